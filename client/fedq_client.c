//  client/fedq_client.c — libfedq: one client session with a fedq node over
//  a DEALER socket (docs/protocol.md "Client conversation").
//
//  Everything the node sends arrives on one socket in any order: replies
//  to our one outstanding request (matched by rid), CONFIRM and RETURN for
//  pipelined publishes, DELIVER for consumers, PONG for heartbeats. Every
//  wait in this file is s_pump: poll, drain with ZMQ_DONTWAIT, dispatch
//  each message to its slot (reply slot, delivery ring, publish counters),
//  send a PING when we have been silent for a heartbeat.
#define _GNU_SOURCE
#include "fedq_client.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ERROR_MAX 512
#define S_DRAIN_MAX 4096        //  messages handled per pump before returning

//  A delivery waiting for fedq_client_recv: its frames, as received.
typedef struct {
    zmq_msg_t parts[3];
} s_pending_t;

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
    s_pending_t *ring;          //  ring_cap slots
    size_t ring_head;           //  oldest
    size_t ring_count;          //  slots in use
    size_t ring_cap;            //  slots allocated
    //  Last failure.
    fedq_rc_t last_rc;
    char last_error[S_ERROR_MAX];
};

static _Thread_local fedq_rc_t s_new_rc;
static _Thread_local char s_new_error[S_ERROR_MAX];

static fedq_rc_t
    s_pump (fedq_client_t *self, int timeout_ms);

static fedq_rc_t
s_fail (fedq_client_t *self, fedq_rc_t rc, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Record a failure on self (or the per-thread slot when NULL); return rc.
static fedq_rc_t
s_fail (fedq_client_t *self, fedq_rc_t rc, const char *fmt, ...)
{
    char *text = self ? self->last_error : s_new_error;
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, S_ERROR_MAX, fmt, args);
    va_end (args);
    if (self)
        self->last_rc = rc;
    else
        s_new_rc = rc;
    return rc;
}

//  A code from the wire as a fedq_rc_t; anything unknown is EPROTO.
static fedq_rc_t
s_wire_rc (int32_t code)
{
    if (code < 0 && code >= FEDQ_EAGAIN)
        return (fedq_rc_t) code;
    return FEDQ_EPROTO;
}

static void
s_frame_init (proto_frame_t *frame, proto_cmd_t cmd)
{
    memset (frame, 0, sizeof *frame);
    frame->version = PROTO_VERSION;
    frame->cmd = cmd;
}

//  ---------------------------------------------------------------------
//  Sending

//  Send one part; retry when a signal interrupts a part after the first.
static int
s_send_part (void *sock, const void *data, size_t size, int flags, bool first)
{
    while (true) {
        int rc = zmq_send (sock, data, size, flags);
        if (rc >= 0 || errno != EINTR || first)
            return rc;
    }
}

//  Send a header, and for message commands the envelope and body.
static fedq_rc_t
s_send (fedq_client_t *self, const proto_frame_t *frame,
        const proto_msg_t *msg, const void *body, size_t size)
{
    self->hbuf.size = 0;
    proto_frame_encode (frame, &self->hbuf);
    int rc = s_send_part (self->sock, self->hbuf.data, self->hbuf.size,
                          msg ? ZMQ_SNDMORE : 0, true);
    if (rc >= 0 && msg) {
        self->ebuf.size = 0;
        proto_msg_encode (msg, &self->ebuf);
        rc = s_send_part (self->sock, self->ebuf.data, self->ebuf.size,
                          ZMQ_SNDMORE, false);
        if (rc >= 0)
            rc = s_send_part (self->sock, body, size, 0, false);
    }
    if (rc < 0) {
        if (errno == EAGAIN)
            return s_fail (self, FEDQ_ETIMEOUT,
                           "cannot send %s to node at %s: not accepted "
                           "within %u ms (node down or not reading)",
                           proto_cmd_name ((int) frame->cmd), self->endpoint,
                           self->timeout_ms);
        if (errno == EINTR)
            return s_fail (self, FEDQ_EAGAIN, "interrupted");
        return s_fail (self, FEDQ_EIO, "cannot send %s to node at %s: %s",
                       proto_cmd_name ((int) frame->cmd), self->endpoint,
                       zmq_strerror (errno));
    }
    self->last_send_ms = fedq_mono_ms ();
    return FEDQ_OK;
}

//  Send a PING when we have been silent for a heartbeat; EIO when PINGs
//  have gone unanswered for three heartbeats.
static fedq_rc_t
s_heartbeat (fedq_client_t *self, int64_t now)
{
    if (self->ping_out_ms && now - self->ping_out_ms
                                 > 3 * (int64_t) self->heartbeat_ms) {
        self->dead = true;
        return s_fail (self, FEDQ_EIO,
                       "node %s at %s stopped answering (no reply to PING "
                       "for %" PRId64 " ms)",
                       self->node_id, self->endpoint, now - self->ping_out_ms);
    }
    if (!self->open || now - self->last_send_ms < self->heartbeat_ms)
        return FEDQ_OK;
    proto_frame_t ping;
    s_frame_init (&ping, PROTO_PING);
    ping.present = PF_RID;
    ping.rid = ++self->next_rid;
    fedq_rc_t rc = s_send (self, &ping, NULL, NULL, 0);
    if (rc == FEDQ_OK && !self->ping_out_ms)
        self->ping_out_ms = now;
    return rc == FEDQ_ETIMEOUT ? FEDQ_OK : rc;
}

//  ---------------------------------------------------------------------
//  Publish accounting

//  Is seq among the returned ones above settled_upto?
static bool
s_was_returned (fedq_client_t *self, uint64_t seq)
{
    size_t lo = 0, hi = self->nreturned;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->returned[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < self->nreturned && self->returned[lo] == seq;
}

static void
s_on_return (fedq_client_t *self, const proto_frame_t *f)
{
    uint64_t seq = f->seq;
    if (!(f->present & PF_SEQ) || seq <= self->settled_upto
        || seq > self->last_seq || s_was_returned (self, seq)) {
        fedq_debug ("ignoring RETURN for seq %" PRIu64, seq);
        return;
    }
    if (self->nreturned == self->returned_cap) {
        size_t cap = self->returned_cap ? self->returned_cap * 2 : 64;
        uint64_t *grown = realloc (self->returned, cap * sizeof *grown);
        if (!grown)
            abort ();
        self->returned = grown;
        self->returned_cap = cap;
    }
    //  RETURNs come in seq order; insert sorted all the same.
    size_t at = self->nreturned;
    while (at > 0 && self->returned[at - 1] > seq) {
        self->returned[at] = self->returned[at - 1];
        at--;
    }
    self->returned[at] = seq;
    self->nreturned++;
    self->returned_total++;
    fedq_rc_t code = s_wire_rc (f->code);
    self->last_return_code = code;
    if (self->settle_fn) {
        char text[S_ERROR_MAX];
        uint32_t len = f->text.len < S_ERROR_MAX - 1 ? f->text.len
                                                     : S_ERROR_MAX - 1;
        if (len)
            memcpy (text, f->text.ptr, len);
        text[len] = 0;
        self->settle_fn (self->settle_arg, seq, code, text);
    }
}

static void
s_on_confirm (fedq_client_t *self, uint64_t upto)
{
    if (upto > self->last_seq) {
        fedq_warn ("node confirmed up to seq %" PRIu64 " but we published "
                   "only %" PRIu64, upto, self->last_seq);
        upto = self->last_seq;
    }
    if (upto <= self->settled_upto)
        return;
    size_t r = 0;   //  returned[] entries at or below upto
    if (self->settle_fn) {
        for (uint64_t seq = self->settled_upto + 1; seq <= upto; seq++) {
            if (r < self->nreturned && self->returned[r] == seq) {
                r++;
                continue;
            }
            self->confirmed_total++;
            self->settle_fn (self->settle_arg, seq, FEDQ_OK, NULL);
        }
    }
    else {
        while (r < self->nreturned && self->returned[r] <= upto)
            r++;
        self->confirmed_total += (upto - self->settled_upto) - r;
    }
    memmove (self->returned, self->returned + r,
             (self->nreturned - r) * sizeof *self->returned);
    self->nreturned -= r;
    self->settled_upto = upto;
}

static uint64_t
s_unsettled (fedq_client_t *self)
{
    return self->last_seq - self->settled_upto - self->nreturned;
}

//  ---------------------------------------------------------------------
//  Receiving

static void
s_close_parts (zmq_msg_t *parts, int nparts)
{
    for (int i = 0; i < nparts; i++)
        zmq_msg_close (&parts[i]);
}

//  Keep a consumer's delivery in the ring until fedq_client_recv.
static void
s_ring_push (fedq_client_t *self, zmq_msg_t *in)
{
    if (self->ring_count == self->ring_cap) {
        size_t cap = self->ring_cap ? self->ring_cap * 2 : 64;
        s_pending_t *grown = malloc (cap * sizeof *grown);
        if (!grown)
            abort ();
        //  Unwrap into the new array (zmq_msg_t may be moved bytewise).
        for (size_t i = 0; i < self->ring_count; i++)
            grown[i] = self->ring[(self->ring_head + i) % self->ring_cap];
        free (self->ring);
        self->ring = grown;
        self->ring_head = 0;
        self->ring_cap = cap;
    }
    s_pending_t *slot
        = &self->ring[(self->ring_head + self->ring_count) % self->ring_cap];
    for (int i = 0; i < 3; i++) {
        zmq_msg_init (&slot->parts[i]);
        zmq_msg_move (&slot->parts[i], &in[i]);
    }
    self->ring_count++;
}

//  Act on one message from the node; what is kept is moved out of in[].
static void
s_dispatch (fedq_client_t *self, zmq_msg_t *in, int nparts)
{
    proto_frame_t f;
    const char *error = NULL;
    if (proto_frame_decode (zmq_msg_data (&in[0]), zmq_msg_size (&in[0]), &f,
                            &error)
        != FEDQ_OK) {
        fedq_warn ("dropping a malformed frame from node at %s: %s",
                   self->endpoint, error ? error : "?");
        return;
    }
    bool is_reply = self->wait_rid && (f.present & PF_RID)
                    && f.rid == self->wait_rid;
    //  HELLO_OK is the reply to HELLO whatever rid it carries.
    if (f.cmd == PROTO_HELLO_OK && self->wait_rid && !self->open)
        is_reply = true;
    switch (f.cmd) {
        case PROTO_CONFIRM:
            if (f.present & PF_UPTO)
                s_on_confirm (self, f.upto);
            return;
        case PROTO_RETURN:
            s_on_return (self, &f);
            return;
        case PROTO_DELIVER:
            if (nparts != 3) {
                fedq_warn ("dropping a DELIVER of %d frames (want 3) from "
                           "node at %s", nparts, self->endpoint);
                return;
            }
            if (f.present & PF_RID) {
                if (is_reply)
                    break;
                //  A GET reply that came after its timeout: give it back.
                if ((f.present & PF_DTAG) && f.dtag)
                    fedq_client_nack (self, f.dtag, false, true);
                return;
            }
            s_ring_push (self, in);
            return;
        case PROTO_BYE:
            self->open = false;
            self->dead = true;
            s_fail (self, FEDQ_EIO, "node %s at %s closed the session",
                    self->node_id, self->endpoint);
            return;
        case PROTO_ERROR:
            if (!is_reply) {
                //  An error about something without a reply (ACK, ...).
                char *text = fedq_str_dup (f.text);
                fedq_warn ("node %s: %s (%s)", self->node_id, text,
                           fedq_rc_name (s_wire_rc (f.code)));
                s_fail (self, s_wire_rc (f.code), "%s", text);
                free (text);
                return;
            }
            break;
        default:
            if (!is_reply)
                return;     //  a late reply or a heartbeat PONG
    }
    //  The reply we wait for.
    s_close_parts (self->reply, self->reply_nparts);
    for (int i = 0; i < nparts; i++) {
        zmq_msg_init (&self->reply[i]);
        zmq_msg_move (&self->reply[i], &in[i]);
    }
    self->reply_nparts = nparts;
    self->reply_ready = true;
}

//  Receive and dispatch one message: 1 done, 0 nothing waiting (with
//  ZMQ_DONTWAIT), or a negative fedq_rc_t.
static int
s_recv_one (fedq_client_t *self, int flags)
{
    zmq_msg_t in[3];
    zmq_msg_init (&in[0]);
    if (zmq_msg_recv (&in[0], self->sock, flags) < 0) {
        int err = errno;
        zmq_msg_close (&in[0]);
        if (err == EAGAIN)
            return 0;
        if (err == EINTR)
            return FEDQ_EAGAIN;
        return s_fail (self, FEDQ_EIO, "cannot receive from node at %s: %s",
                       self->endpoint, zmq_strerror (err));
    }
    int nparts = 1;
    bool extra = false;
    while (zmq_msg_more (&in[nparts - 1])) {
        zmq_msg_t *part = &in[nparts];
        zmq_msg_t scratch;
        if (nparts == 3) {
            part = &scratch;
            extra = true;
        }
        zmq_msg_init (part);
        //  The rest of a multipart message is already here.
        while (zmq_msg_recv (part, self->sock, 0) < 0 && errno == EINTR)
            ;
        if (part == &scratch) {
            bool more = zmq_msg_more (&scratch);
            zmq_msg_close (&scratch);
            if (!more)
                break;
        }
        else
            nparts++;
    }
    self->ping_out_ms = 0;
    if (extra)
        fedq_warn ("dropping a message of more than 3 frames from node at %s",
                   self->endpoint);
    else
        s_dispatch (self, in, nparts);
    s_close_parts (in, nparts);
    return 1;
}

//  Wait up to timeout_ms (-1 = forever) for something from the node, then
//  handle all that is waiting. Keeps the heartbeat going.
static fedq_rc_t
s_pump (fedq_client_t *self, int timeout_ms)
{
    if (self->dead)
        return self->last_rc ? self->last_rc : FEDQ_EIO;
    int handled = 0;
    while (handled < S_DRAIN_MAX) {
        int rc = s_recv_one (self, ZMQ_DONTWAIT);
        if (rc < 0)
            return (fedq_rc_t) rc;
        if (rc == 0)
            break;
        handled++;
    }
    int64_t now = fedq_mono_ms ();
    fedq_rc_t hrc = s_heartbeat (self, now);
    if (hrc != FEDQ_OK)
        return hrc;
    if (handled || timeout_ms == 0)
        return FEDQ_OK;
    //  Sleep until a message, the next heartbeat or the timeout.
    int64_t wait = (int64_t) self->heartbeat_ms - (now - self->last_send_ms);
    if (!self->open || wait < 0)
        wait = self->heartbeat_ms;
    if (self->ping_out_ms) {
        int64_t dead_in = self->ping_out_ms + 3 * (int64_t) self->heartbeat_ms
                          - now + 1;
        if (dead_in < wait)
            wait = dead_in;
    }
    if (timeout_ms > 0 && timeout_ms < wait)
        wait = timeout_ms;
    zmq_pollitem_t item = {self->sock, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll (&item, 1, (long) wait);
    if (rc < 0) {
        if (errno == EINTR)
            return s_fail (self, FEDQ_EAGAIN, "interrupted");
        return s_fail (self, FEDQ_EIO, "cannot poll the socket to %s: %s",
                       self->endpoint, zmq_strerror (errno));
    }
    if (rc > 0)
        return s_pump (self, 0);
    return s_heartbeat (self, fedq_mono_ms ());
}

fedq_rc_t
fedq_client_poll (fedq_client_t *self, int timeout_ms)
{
    assert (self);
    if (timeout_ms <= 0)
        return s_pump (self, timeout_ms);
    int64_t deadline = fedq_mono_ms () + timeout_ms;
    while (true) {
        int64_t left = deadline - fedq_mono_ms ();
        if (left <= 0)
            return FEDQ_OK;
        fedq_rc_t rc = s_pump (self, (int) left);
        if (rc != FEDQ_OK)
            return rc;
    }
}

//  ---------------------------------------------------------------------
//  Requests

//  Send a request (rid assigned here) and wait for its reply, left in
//  self->reply. FEDQ_OK, ETIMEOUT, or the code of an ERROR reply.
static fedq_rc_t
s_request (fedq_client_t *self, proto_frame_t *frame, proto_frame_t *reply)
{
    if (self->dead)
        return self->last_rc ? self->last_rc : FEDQ_EIO;
    if (!self->open && frame->cmd != PROTO_HELLO)
        return s_fail (self, FEDQ_EINVAL, "the session is closed");
    frame->present |= PF_RID;
    frame->rid = ++self->next_rid;
    s_close_parts (self->reply, self->reply_nparts);
    self->reply_nparts = 0;
    self->reply_ready = false;
    fedq_rc_t rc = s_send (self, frame, NULL, NULL, 0);
    if (rc != FEDQ_OK)
        return rc;
    self->wait_rid = frame->rid;
    int64_t deadline = fedq_mono_ms () + self->timeout_ms;
    while (!self->reply_ready) {
        int64_t left = deadline - fedq_mono_ms ();
        if (left <= 0) {
            self->wait_rid = 0;
            return s_fail (self, FEDQ_ETIMEOUT,
                           "no reply to %s from node %s at %s within %u ms",
                           proto_cmd_name ((int) frame->cmd),
                           self->open ? self->node_id : "", self->endpoint,
                           self->timeout_ms);
        }
        rc = s_pump (self, (int) left);
        if (rc != FEDQ_OK) {
            self->wait_rid = 0;
            return rc;
        }
    }
    self->wait_rid = 0;
    const char *error = NULL;
    if (proto_frame_decode (zmq_msg_data (&self->reply[0]),
                            zmq_msg_size (&self->reply[0]), reply, &error)
        != FEDQ_OK)
        return s_fail (self, FEDQ_EPROTO, "malformed reply: %s", error);
    if (reply->cmd == PROTO_ERROR) {
        rc = s_wire_rc (reply->code);
        if (reply->text.len)
            return s_fail (self, rc, "%.*s", (int) reply->text.len,
                           reply->text.ptr);
        return s_fail (self, rc, "%s refused by node %s",
                       proto_cmd_name ((int) frame->cmd), self->node_id);
    }
    self->last_rc = FEDQ_OK;
    self->last_error[0] = 0;
    return FEDQ_OK;
}

//  A request whose reply is OK (with an optional count).
static fedq_rc_t
s_request_ok (fedq_client_t *self, proto_frame_t *frame, uint64_t *count_p)
{
    proto_frame_t reply;
    fedq_rc_t rc = s_request (self, frame, &reply);
    if (rc != FEDQ_OK)
        return rc;
    if (reply.cmd != PROTO_OK)
        return s_fail (self, FEDQ_EPROTO, "node answered %s with %s",
                       proto_cmd_name ((int) frame->cmd),
                       proto_cmd_name ((int) reply.cmd));
    if (count_p)
        *count_p = (reply.present & PF_COUNT) ? reply.count : 0;
    return FEDQ_OK;
}

//  Check a name argument.
static fedq_rc_t
s_check_name (fedq_client_t *self, const char *what, const char *name)
{
    if (!name)
        return s_fail (self, FEDQ_EINVAL, "%s name missing", what);
    if (strlen (name) > PROTO_MAX_NAME)
        return s_fail (self, FEDQ_EINVAL,
                       "%s name is %zu bytes long; at most %d allowed", what,
                       strlen (name), PROTO_MAX_NAME);
    return FEDQ_OK;
}

//  ---------------------------------------------------------------------
//  Session

static fedq_rc_t
s_apply_curve (fedq_client_t *self, const fedq_client_opts_t *opts)
{
    if (!opts->key_file && !opts->server_key_file)
        return FEDQ_OK;
    if (!opts->key_file || !opts->server_key_file)
        return s_fail (NULL, FEDQ_EINVAL,
                       "CURVE needs both our secret key (--key FILE) and the "
                       "node's public key (--server-key FILE)");
    if (!zmq_has ("curve"))
        return s_fail (NULL, FEDQ_EINVAL,
                       "this libzmq was built without CURVE support");
    fedq_rc_t rc = FEDQ_OK;
    zcert_t *ours = zcert_load (opts->key_file);
    zcert_t *theirs = zcert_load (opts->server_key_file);
    static const uint8_t zero[32] = {0};
    if (!ours)
        rc = s_fail (NULL, FEDQ_EINVAL,
                     "cannot load the key %s: missing or not a key file "
                     "(make one with: fedq keygen NAME)", opts->key_file);
    else if (memcmp (zcert_secret_key (ours), zero, 32) == 0)
        rc = s_fail (NULL, FEDQ_EINVAL,
                     "%s holds no secret key: give --key the NAME.key file "
                     "written by fedq keygen", opts->key_file);
    else if (!theirs)
        rc = s_fail (NULL, FEDQ_EINVAL,
                     "cannot load the node's public key %s: missing or not "
                     "a key file", opts->server_key_file);
    else if (zmq_setsockopt (self->sock, ZMQ_CURVE_SERVERKEY,
                             zcert_public_key (theirs), 32)
             || zmq_setsockopt (self->sock, ZMQ_CURVE_PUBLICKEY,
                                zcert_public_key (ours), 32)
             || zmq_setsockopt (self->sock, ZMQ_CURVE_SECRETKEY,
                                zcert_secret_key (ours), 32))
        rc = s_fail (NULL, FEDQ_EINVAL, "cannot set CURVE keys: %s",
                     zmq_strerror (errno));
    zcert_destroy (&ours);
    zcert_destroy (&theirs);
    return rc;
}

fedq_client_t *
fedq_client_new (const char *endpoint, const fedq_client_opts_t *opts)
{
    static const fedq_client_opts_t defaults = {0};
    if (!opts)
        opts = &defaults;
    s_new_rc = FEDQ_OK;
    s_new_error[0] = 0;
    if (!endpoint || !*endpoint) {
        s_fail (NULL, FEDQ_EINVAL, "no endpoint given");
        return NULL;
    }
    fedq_client_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->endpoint = strdup (endpoint);
    snprintf (self->node_id, sizeof self->node_id, "%s", endpoint);
    self->timeout_ms = opts->timeout_ms ? opts->timeout_ms
                                        : FEDQ_CLIENT_TIMEOUT_MS;
    self->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms
                                            : FEDQ_CLIENT_HEARTBEAT_MS;
    self->window = opts->window ? opts->window : FEDQ_CLIENT_WINDOW;
    self->ctx = zmq_ctx_new ();
    self->sock = self->ctx ? zmq_socket (self->ctx, ZMQ_DEALER) : NULL;
    if (!self->sock) {
        s_fail (NULL, FEDQ_EIO, "cannot create a ZeroMQ socket: %s",
                zmq_strerror (errno));
        goto cleanup;
    }
    int linger = 1000;
    int sndtimeo = (int) self->timeout_ms;
    int rcvhwm = 0;     //  the node bounds what it sends: prefetch, window
    int sndhwm = (int) self->window + 1000;
    zmq_setsockopt (self->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    zmq_setsockopt (self->sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt (self->sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    if (s_apply_curve (self, opts) != FEDQ_OK)
        goto cleanup;
    if (zmq_connect (self->sock, endpoint)) {
        s_fail (NULL, FEDQ_EINVAL,
                "cannot connect to \"%s\": %s (want tcp://HOST:PORT)",
                endpoint, zmq_strerror (errno));
        goto cleanup;
    }
    proto_frame_t hello, reply;
    s_frame_init (&hello, PROTO_HELLO);
    hello.present = PF_HEARTBEAT;
    hello.heartbeat_ms = self->heartbeat_ms;
    if (s_request (self, &hello, &reply) != FEDQ_OK) {
        if (self->last_rc == FEDQ_ETIMEOUT)
            s_fail (NULL, FEDQ_ETIMEOUT,
                    "no answer from a node at %s within %u ms%s", endpoint,
                    self->timeout_ms,
                    opts->key_file ? " (is fedq-node running there, and "
                                     "are the CURVE keys the right ones?)"
                                   : " (is fedq-node running there?)");
        else
            s_fail (NULL, self->last_rc, "node at %s refused the session: %s",
                    endpoint, self->last_error);
        goto cleanup;
    }
    if (reply.cmd != PROTO_HELLO_OK) {
        s_fail (NULL, FEDQ_EPROTO, "node at %s answered HELLO with %s",
                endpoint, proto_cmd_name ((int) reply.cmd));
        goto cleanup;
    }
    if ((reply.present & PF_NODE) && reply.node.len
        && reply.node.len <= PROTO_MAX_NAME) {
        memcpy (self->node_id, reply.node.ptr, reply.node.len);
        self->node_id[reply.node.len] = 0;
    }
    self->open = true;
    return self;

cleanup:
    fedq_client_destroy (&self);
    return NULL;
}

fedq_rc_t
fedq_client_close (fedq_client_t *self)
{
    assert (self);
    if (!self->open)
        return FEDQ_OK;
    self->open = false;
    if (self->dead)
        return FEDQ_OK;
    proto_frame_t bye;
    s_frame_init (&bye, PROTO_BYE);
    return s_send (self, &bye, NULL, NULL, 0);
}

void
fedq_client_destroy (fedq_client_t **self_p)
{
    assert (self_p);
    fedq_client_t *self = *self_p;
    if (!self)
        return;
    //  Let a BYE out; drop anything queued to a node we never reached.
    bool bye = self->open && !self->dead
               && fedq_client_close (self) == FEDQ_OK;
    if (self->sock && !bye) {
        int linger = 0;
        zmq_setsockopt (self->sock, ZMQ_LINGER, &linger, sizeof linger);
    }
    s_close_parts (self->reply, self->reply_nparts);
    for (size_t i = 0; i < self->ring_count; i++)
        s_close_parts (self->ring[(self->ring_head + i) % self->ring_cap].parts,
                       3);
    free (self->ring);
    free (self->returned);
    fedq_buf_free (&self->hbuf);
    fedq_buf_free (&self->ebuf);
    if (self->sock)
        zmq_close (self->sock);
    if (self->ctx)
        zmq_ctx_term (self->ctx);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

const char *
fedq_client_last_error (fedq_client_t *self)
{
    return self ? self->last_error : s_new_error;
}

fedq_rc_t
fedq_client_last_rc (fedq_client_t *self)
{
    return self ? self->last_rc : s_new_rc;
}

const char *
fedq_client_node_id (fedq_client_t *self)
{
    assert (self);
    return self->node_id;
}

const char *
fedq_client_endpoint (fedq_client_t *self)
{
    assert (self);
    return self->endpoint;
}

void
fedq_client_set_timeout (fedq_client_t *self, uint32_t timeout_ms)
{
    assert (self);
    self->timeout_ms = timeout_ms ? timeout_ms : FEDQ_CLIENT_TIMEOUT_MS;
    int sndtimeo = (int) self->timeout_ms;
    zmq_setsockopt (self->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
}

void *
fedq_client_socket (fedq_client_t *self)
{
    assert (self);
    return self->sock;
}

//  ---------------------------------------------------------------------
//  Declarations

fedq_rc_t
fedq_client_declare_queue (fedq_client_t *self, const char *name,
                           const proto_qopts_t *opts, bool passive,
                           uint64_t *count_p)
{
    assert (self);
    fedq_rc_t rc = s_check_name (self, "queue", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    s_frame_init (&f, PROTO_DECLARE_QUEUE);
    f.present = PF_NAME;
    f.name = fedq_str_of (name);
    if (opts) {
        f.present |= PF_QOPTS;
        f.qopts = *opts;
    }
    if (passive)
        f.flags |= PFL_PASSIVE;
    return s_request_ok (self, &f, count_p);
}

fedq_rc_t
fedq_client_delete_queue (fedq_client_t *self, const char *name,
                          bool if_unused, uint64_t *count_p)
{
    assert (self);
    fedq_rc_t rc = s_check_name (self, "queue", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    s_frame_init (&f, PROTO_DELETE_QUEUE);
    f.present = PF_NAME;
    f.name = fedq_str_of (name);
    if (if_unused)
        f.flags |= PFL_IF_UNUSED;
    return s_request_ok (self, &f, count_p);
}

fedq_rc_t
fedq_client_purge_queue (fedq_client_t *self, const char *name,
                         uint64_t *count_p)
{
    assert (self);
    fedq_rc_t rc = s_check_name (self, "queue", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    s_frame_init (&f, PROTO_PURGE_QUEUE);
    f.present = PF_NAME;
    f.name = fedq_str_of (name);
    return s_request_ok (self, &f, count_p);
}

fedq_rc_t
fedq_client_declare_exchange (fedq_client_t *self, const char *name,
                              const char *type, bool passive)
{
    assert (self);
    fedq_rc_t rc = s_check_name (self, "exchange", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    s_frame_init (&f, PROTO_DECLARE_EXCHANGE);
    f.present = PF_NAME | PF_TYPE;
    f.name = fedq_str_of (name);
    f.type = fedq_str_of (type ? type : "direct");
    if (passive)
        f.flags |= PFL_PASSIVE;
    return s_request_ok (self, &f, NULL);
}

fedq_rc_t
fedq_client_delete_exchange (fedq_client_t *self, const char *name)
{
    assert (self);
    fedq_rc_t rc = s_check_name (self, "exchange", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    s_frame_init (&f, PROTO_DELETE_EXCHANGE);
    f.present = PF_NAME;
    f.name = fedq_str_of (name);
    return s_request_ok (self, &f, NULL);
}

static fedq_rc_t
s_binding (fedq_client_t *self, proto_cmd_t cmd, const char *exchange,
           const char *queue, const char *key)
{
    fedq_rc_t rc = s_check_name (self, "exchange", exchange);
    if (rc == FEDQ_OK)
        rc = s_check_name (self, "queue", queue);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    s_frame_init (&f, cmd);
    f.present = PF_EXCHANGE | PF_QUEUE | PF_KEY;
    f.exchange = fedq_str_of (exchange);
    f.queue = fedq_str_of (queue);
    f.key = fedq_str_of (key ? key : "");
    return s_request_ok (self, &f, NULL);
}

fedq_rc_t
fedq_client_bind (fedq_client_t *self, const char *exchange,
                  const char *queue, const char *key)
{
    assert (self);
    return s_binding (self, PROTO_BIND, exchange, queue, key);
}

fedq_rc_t
fedq_client_unbind (fedq_client_t *self, const char *exchange,
                    const char *queue, const char *key)
{
    assert (self);
    return s_binding (self, PROTO_UNBIND, exchange, queue, key);
}

fedq_rc_t
fedq_client_status (fedq_client_t *self, char **json_p)
{
    assert (self);
    assert (json_p);
    *json_p = NULL;
    proto_frame_t f, reply;
    s_frame_init (&f, PROTO_STATUS);
    fedq_rc_t rc = s_request (self, &f, &reply);
    if (rc != FEDQ_OK)
        return rc;
    if (reply.cmd != PROTO_STATUS_OK || !(reply.present & PF_JSON))
        return s_fail (self, FEDQ_EPROTO,
                       "node answered STATUS with %s and no json",
                       proto_cmd_name ((int) reply.cmd));
    *json_p = fedq_str_dup (reply.json);
    return FEDQ_OK;
}

fedq_rc_t
fedq_client_ping (fedq_client_t *self, int64_t *rtt_us_p)
{
    assert (self);
    int64_t start = fedq_mono_us ();
    proto_frame_t f, reply;
    s_frame_init (&f, PROTO_PING);
    fedq_rc_t rc = s_request (self, &f, &reply);
    if (rc != FEDQ_OK)
        return rc;
    if (reply.cmd != PROTO_PONG)
        return s_fail (self, FEDQ_EPROTO, "node answered PING with %s",
                       proto_cmd_name ((int) reply.cmd));
    if (rtt_us_p)
        *rtt_us_p = fedq_mono_us () - start;
    return FEDQ_OK;
}

//  ---------------------------------------------------------------------
//  Publishing

void
fedq_client_set_settle_handler (fedq_client_t *self, fedq_settle_fn *fn,
                                void *arg)
{
    assert (self);
    self->settle_fn = fn;
    self->settle_arg = arg;
}

int64_t
fedq_client_publish (fedq_client_t *self, const fedq_message_t *msg,
                     const void *body, size_t size)
{
    assert (self);
    assert (msg);
    if (self->dead)
        return self->last_rc ? self->last_rc : FEDQ_EIO;
    if (!self->open)
        return s_fail (self, FEDQ_EINVAL, "the session is closed");
    if (msg->nheaders > PROTO_MAX_HEADERS)
        return s_fail (self, FEDQ_EINVAL, "%u headers; at most %d allowed",
                       msg->nheaders, PROTO_MAX_HEADERS);
    if (msg->priority > 9)
        return s_fail (self, FEDQ_EINVAL, "priority %u; want 0 to 9",
                       msg->priority);
    //  Keep the window: wait for settlements while it is full.
    int64_t deadline = 0;
    while (s_unsettled (self) >= self->window) {
        int64_t now = fedq_mono_ms ();
        if (!deadline)
            deadline = now + self->timeout_ms;
        if (now >= deadline)
            return s_fail (self, FEDQ_ETIMEOUT,
                           "%" PRIu64 " publishes unconfirmed by node %s for "
                           "%u ms (window full)", s_unsettled (self),
                           self->node_id, self->timeout_ms);
        fedq_rc_t rc = s_pump (self, (int) (deadline - now));
        if (rc != FEDQ_OK)
            return rc;
    }
    proto_frame_t f;
    s_frame_init (&f, PROTO_PUBLISH);
    f.present = PF_SEQ | PF_EXCHANGE | PF_KEY;
    f.flags = PFL_MANDATORY;
    f.seq = self->last_seq + 1;
    f.exchange = fedq_str_of (msg->exchange ? msg->exchange : "");
    f.key = fedq_str_of (msg->routing_key ? msg->routing_key : "");
    proto_msg_t *env = &self->envelope;
    env->exchange = f.exchange;
    env->routing_key = f.key;
    env->message_id = fedq_str_of (msg->message_id);
    env->priority = msg->priority;
    env->ttl_ms = msg->ttl_ms;
    env->nheaders = msg->nheaders;
    if (msg->nheaders)
        memcpy (env->headers, msg->headers,
                msg->nheaders * sizeof *msg->headers);
    fedq_rc_t rc = s_send (self, &f, env, body, size);
    if (rc != FEDQ_OK)
        return rc;
    self->last_seq = f.seq;
    //  Take in confirms as they come, without waiting.
    if (self->ring_count < 100000) {
        rc = s_pump (self, 0);
        if (rc != FEDQ_OK && rc != FEDQ_EAGAIN)
            return rc;
    }
    return (int64_t) f.seq;
}

fedq_rc_t
fedq_client_wait_confirms (fedq_client_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = fedq_mono_ms () + timeout_ms;
    while (s_unsettled (self) > 0) {
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t ms = deadline - fedq_mono_ms ();
            if (ms <= 0)
                return s_fail (self, FEDQ_ETIMEOUT,
                               "%" PRIu64 " of %" PRIu64 " publishes not "
                               "confirmed by node %s within %d ms",
                               s_unsettled (self), self->last_seq,
                               self->node_id, timeout_ms);
            left = (int) ms;
        }
        fedq_rc_t rc = s_pump (self, left);
        if (rc != FEDQ_OK)
            return rc;
    }
    return FEDQ_OK;
}

void
fedq_client_publish_stats (fedq_client_t *self, fedq_publish_stats_t *stats)
{
    assert (self);
    assert (stats);
    stats->published = self->last_seq;
    stats->confirmed = self->confirmed_total;
    stats->returned = self->returned_total;
    stats->unsettled = s_unsettled (self);
    stats->last_return_code = self->last_return_code;
}

//  ---------------------------------------------------------------------
//  Consuming

void
fedq_delivery_release (fedq_delivery_t *d)
{
    assert (d);
    if (d->held)
        s_close_parts (d->parts, 3);
    d->held = false;
    d->body = NULL;
    d->body_size = 0;
    d->dtag = 0;
}

//  Take the three frames of a DELIVER into d and decode them.
static fedq_rc_t
s_delivery_fill (fedq_client_t *self, fedq_delivery_t *d, zmq_msg_t *src)
{
    for (int i = 0; i < 3; i++) {
        zmq_msg_init (&d->parts[i]);
        zmq_msg_move (&d->parts[i], &src[i]);
    }
    d->held = true;
    const char *error = NULL;
    if (proto_frame_decode (zmq_msg_data (&d->parts[0]),
                            zmq_msg_size (&d->parts[0]), &d->frame, &error)
            != FEDQ_OK
        || proto_msg_decode (zmq_msg_data (&d->parts[1]),
                             zmq_msg_size (&d->parts[1]), &d->msg, &error)
               != FEDQ_OK) {
        fedq_delivery_release (d);
        fedq_warn ("dropping a malformed DELIVER from node %s: %s",
                   self->node_id, error ? error : "?");
        return s_fail (self, FEDQ_EPROTO, "malformed DELIVER: %s",
                       error ? error : "?");
    }
    d->body = zmq_msg_data (&d->parts[2]);
    d->body_size = zmq_msg_size (&d->parts[2]);
    d->dtag = d->frame.dtag;
    return FEDQ_OK;
}

fedq_rc_t
fedq_client_consume (fedq_client_t *self, const char *queue, const char *tag,
                     uint32_t prefetch, bool no_ack)
{
    assert (self);
    fedq_rc_t rc = s_check_name (self, "queue", queue);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    s_frame_init (&f, PROTO_CONSUME);
    f.present = PF_QUEUE | PF_TAG | PF_PREFETCH;
    f.queue = fedq_str_of (queue);
    f.tag = fedq_str_of (tag ? tag : "fedq");
    f.prefetch = prefetch;
    if (no_ack)
        f.flags |= PFL_NO_ACK;
    return s_request_ok (self, &f, NULL);
}

fedq_rc_t
fedq_client_cancel (fedq_client_t *self, const char *tag)
{
    assert (self);
    proto_frame_t f;
    s_frame_init (&f, PROTO_CANCEL);
    f.present = PF_TAG;
    f.tag = fedq_str_of (tag ? tag : "fedq");
    return s_request_ok (self, &f, NULL);
}

fedq_rc_t
fedq_client_recv (fedq_client_t *self, fedq_delivery_t *d, int timeout_ms)
{
    assert (self);
    assert (d);
    fedq_delivery_release (d);
    int64_t deadline = fedq_mono_ms () + (timeout_ms > 0 ? timeout_ms : 0);
    while (true) {
        while (self->ring_count) {
            s_pending_t *slot = &self->ring[self->ring_head];
            self->ring_head = (self->ring_head + 1) % self->ring_cap;
            self->ring_count--;
            fedq_rc_t rc = s_delivery_fill (self, d, slot->parts);
            s_close_parts (slot->parts, 3);
            if (rc == FEDQ_OK)
                return FEDQ_OK;
        }
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t ms = deadline - fedq_mono_ms ();
            if (ms <= 0 && timeout_ms > 0)
                return FEDQ_ETIMEOUT;
            left = ms > 0 ? (int) ms : 0;
        }
        fedq_rc_t rc = s_pump (self, left);
        if (rc != FEDQ_OK)
            return rc;
        if (timeout_ms == 0 && !self->ring_count)
            return FEDQ_ETIMEOUT;
    }
}

fedq_rc_t
fedq_client_get (fedq_client_t *self, const char *queue, bool no_ack,
                 fedq_delivery_t *d)
{
    assert (self);
    assert (d);
    fedq_delivery_release (d);
    fedq_rc_t rc = s_check_name (self, "queue", queue);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f, reply;
    s_frame_init (&f, PROTO_GET);
    f.present = PF_QUEUE;
    f.queue = fedq_str_of (queue);
    if (no_ack)
        f.flags |= PFL_NO_ACK;
    rc = s_request (self, &f, &reply);
    if (rc != FEDQ_OK)
        return rc;
    if (reply.cmd == PROTO_GET_EMPTY)
        return s_fail (self, FEDQ_EAGAIN, "queue \"%s\" is empty", queue);
    if (reply.cmd != PROTO_DELIVER || self->reply_nparts != 3)
        return s_fail (self, FEDQ_EPROTO, "node answered GET with %s",
                       proto_cmd_name ((int) reply.cmd));
    rc = s_delivery_fill (self, d, self->reply);
    s_close_parts (self->reply, 3);
    self->reply_nparts = 0;
    return rc;
}

static fedq_rc_t
s_settle (fedq_client_t *self, proto_cmd_t cmd, uint64_t dtag, uint32_t flags)
{
    if (self->dead)
        return self->last_rc ? self->last_rc : FEDQ_EIO;
    if (!self->open)
        return s_fail (self, FEDQ_EINVAL, "the session is closed");
    proto_frame_t f;
    s_frame_init (&f, cmd);
    f.present = PF_DTAG;
    f.dtag = dtag;
    f.flags = flags;
    return s_send (self, &f, NULL, NULL, 0);
}

fedq_rc_t
fedq_client_ack (fedq_client_t *self, uint64_t dtag, bool multiple)
{
    assert (self);
    return s_settle (self, PROTO_ACK, dtag, multiple ? PFL_MULTIPLE : 0);
}

fedq_rc_t
fedq_client_nack (fedq_client_t *self, uint64_t dtag, bool multiple,
                  bool requeue)
{
    assert (self);
    return s_settle (self, PROTO_NACK, dtag,
                     (multiple ? PFL_MULTIPLE : 0)
                         | (requeue ? PFL_REQUEUE : 0));
}

fedq_rc_t
fedq_client_reject (fedq_client_t *self, uint64_t dtag, bool multiple)
{
    assert (self);
    return s_settle (self, PROTO_REJECT, dtag, multiple ? PFL_MULTIPLE : 0);
}
