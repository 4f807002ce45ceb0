//  client/fedq_client.c — libfedq sessions: connect (with CURVE), HELLO,
//  requests matched by rid, declarations, status, ping, BYE
//  (docs/protocol.md "Client conversation"). The I/O underneath is in
//  fedq_client_io.c.
#define _GNU_SOURCE
#include "fedq_client_internal.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local fedq_rc_t s_new_rc;
static _Thread_local char s_new_error[CLIENT_ERROR_MAX];
static _Thread_local bool s_new_from_node;

//  Record a failure on self (or the per-thread slot when NULL); return rc.
fedq_rc_t
client_fail (fedq_client_t *self, fedq_rc_t rc, const char *fmt, ...)
{
    char *text = self ? self->last_error : s_new_error;
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, CLIENT_ERROR_MAX, fmt, args);
    va_end (args);
    if (self) {
        self->last_rc = rc;
        self->last_from_node = false;
    }
    else {
        s_new_rc = rc;
        s_new_from_node = false;
    }
    return rc;
}

//  A code from the wire as a fedq_rc_t; anything unknown is EPROTO.
//  ESESSION is the last code (a publish returned by a restarted node
//  showed as "EPROTO ... another protocol version" before it counted).
fedq_rc_t
client_wire_rc (int32_t code)
{
    if (code < 0 && code >= FEDQ_ESESSION)
        return (fedq_rc_t) code;
    return FEDQ_EPROTO;
}

void
client_frame_init (proto_frame_t *frame, proto_cmd_t cmd)
{
    memset (frame, 0, sizeof *frame);
    frame->version = PROTO_VERSION;
    frame->cmd = cmd;
}

//  ---------------------------------------------------------------------
//  Requests

//  Send a request (rid assigned here) and wait for its reply, left in
//  self->reply. FEDQ_OK, ETIMEOUT, or the code of an ERROR reply.
fedq_rc_t
client_request (fedq_client_t *self, proto_frame_t *frame, proto_frame_t *reply)
{
    if (self->dead)
        return FEDQ_EIO;
    if (!self->open && frame->cmd != PROTO_HELLO)
        return client_fail (self, FEDQ_EINVAL, "the session is closed");
    frame->present |= PF_RID;
    frame->rid = ++self->next_rid;
    client_close_parts (self->reply, self->reply_nparts);
    self->reply_nparts = 0;
    self->reply_ready = false;
    fedq_rc_t rc = client_send (self, frame, NULL, NULL, 0);
    if (rc != FEDQ_OK)
        return rc;
    self->wait_rid = frame->rid;
    int64_t deadline = fedq_mono_ms () + self->timeout_ms;
    while (!self->reply_ready) {
        int64_t left = deadline - fedq_mono_ms ();
        if (left <= 0) {
            self->wait_rid = 0;
            return client_fail (self, FEDQ_ETIMEOUT,
                                "no reply to %s from node %s at %s within "
                                "%u ms",
                                proto_cmd_name ((int) frame->cmd),
                                self->open ? self->node_id : "", self->endpoint,
                                self->timeout_ms);
        }
        rc = client_pump (self, (int) left);
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
        return client_fail (self, FEDQ_EPROTO, "malformed reply: %s", error);
    if (reply->cmd == PROTO_ERROR) {
        rc = client_wire_rc (reply->code);
        if (reply->text.len)
            client_fail (self, rc, "%.*s", (int) reply->text.len,
                         reply->text.ptr);
        else
            client_fail (self, rc, "%s refused",
                         proto_cmd_name ((int) frame->cmd));
        self->last_from_node = true;
        return rc;
    }
    self->last_rc = FEDQ_OK;
    self->last_from_node = false;
    self->last_error[0] = 0;
    return FEDQ_OK;
}

//  A request whose reply is OK (with an optional count).
fedq_rc_t
client_request_ok (fedq_client_t *self, proto_frame_t *frame, uint64_t *count_p)
{
    proto_frame_t reply;
    fedq_rc_t rc = client_request (self, frame, &reply);
    if (rc != FEDQ_OK)
        return rc;
    if (reply.cmd != PROTO_OK)
        return client_fail (self, FEDQ_EPROTO, "node answered %s with %s",
                            proto_cmd_name ((int) frame->cmd),
                            proto_cmd_name ((int) reply.cmd));
    if (count_p)
        *count_p = (reply.present & PF_COUNT) ? reply.count : 0;
    return FEDQ_OK;
}

//  Check a name argument.
fedq_rc_t
client_check_name (fedq_client_t *self, const char *what, const char *name)
{
    if (!name)
        return client_fail (self, FEDQ_EINVAL, "%s name missing", what);
    if (strlen (name) > PROTO_MAX_NAME)
        return client_fail (self, FEDQ_EINVAL,
                            "%s name is %zu bytes long; at most %d allowed",
                            what, strlen (name), PROTO_MAX_NAME);
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
        return client_fail (NULL, FEDQ_EINVAL,
                            "CURVE needs both our secret key (--key FILE) and "
                            "the node's public key (--server-key FILE)");
    if (!zmq_has ("curve"))
        return client_fail (NULL, FEDQ_EINVAL,
                            "this libzmq was built without CURVE support");
    fedq_rc_t rc = FEDQ_OK;
    zcert_t *ours = zcert_load (opts->key_file);
    zcert_t *theirs = zcert_load (opts->server_key_file);
    static const uint8_t zero[32] = {0};
    if (!ours)
        rc = client_fail (NULL, FEDQ_EINVAL,
                          "cannot load the key %s: missing or not a key file "
                          "(make one with: fedq keygen NAME)", opts->key_file);
    else if (memcmp (zcert_secret_key (ours), zero, 32) == 0)
        rc = client_fail (NULL, FEDQ_EINVAL,
                          "%s holds no secret key: give --key the NAME.key "
                          "file written by fedq keygen", opts->key_file);
    else if (!theirs)
        rc = client_fail (NULL, FEDQ_EINVAL,
                          "cannot load the node's public key %s: missing or "
                          "not a key file", opts->server_key_file);
    else if (zmq_setsockopt (self->sock, ZMQ_CURVE_SERVERKEY,
                             zcert_public_key (theirs), 32)
             || zmq_setsockopt (self->sock, ZMQ_CURVE_PUBLICKEY,
                                zcert_public_key (ours), 32)
             || zmq_setsockopt (self->sock, ZMQ_CURVE_SECRETKEY,
                                zcert_secret_key (ours), 32))
        rc = client_fail (NULL, FEDQ_EINVAL, "cannot set CURVE keys: %s",
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
        client_fail (NULL, FEDQ_EINVAL, "no endpoint given");
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
        client_fail (NULL, FEDQ_EIO, "cannot create a ZeroMQ socket: %s",
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
        client_fail (NULL, FEDQ_EINVAL,
                     "cannot connect to \"%s\": %s (want tcp://HOST:PORT)",
                     endpoint, zmq_strerror (errno));
        goto cleanup;
    }
    proto_frame_t hello, reply;
    client_frame_init (&hello, PROTO_HELLO);
    hello.present = PF_HEARTBEAT;
    hello.heartbeat_ms = self->heartbeat_ms;
    if (client_request (self, &hello, &reply) != FEDQ_OK) {
        if (self->last_rc == FEDQ_EAGAIN)
            client_fail (NULL, FEDQ_EAGAIN,
                         "interrupted while connecting to %s", endpoint);
        else if (self->last_rc == FEDQ_ETIMEOUT)
            client_fail (NULL, FEDQ_ETIMEOUT,
                         "no answer from a node at %s within %u ms%s", endpoint,
                         self->timeout_ms,
                         opts->key_file ? " (is fedq-node running there, and "
                                     "are the CURVE keys the right ones?)"
                                   : " (is fedq-node running there?)");
        else {
            client_fail (NULL, self->last_rc,
                         "node at %s refused the session: %s", endpoint,
                         self->last_error);
            s_new_from_node = self->last_from_node;
        }
        goto cleanup;
    }
    if (reply.cmd != PROTO_HELLO_OK) {
        client_fail (NULL, FEDQ_EPROTO, "node at %s answered HELLO with %s",
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
    client_frame_init (&bye, PROTO_BYE);
    return client_send (self, &bye, NULL, NULL, 0);
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
    client_close_parts (self->reply, self->reply_nparts);
    for (size_t i = 0; i < self->ring_count; i++)
        client_close_parts (
            self->ring[(self->ring_head + i) % self->ring_cap].parts, 3);
    free (self->ring);
    free (self->consumers);
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

bool
fedq_client_last_error_from_node (fedq_client_t *self)
{
    return self ? self->last_from_node : s_new_from_node;
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
    fedq_rc_t rc = client_check_name (self, "queue", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    client_frame_init (&f, PROTO_DECLARE_QUEUE);
    f.present = PF_NAME;
    f.name = fedq_str_of (name);
    if (opts) {
        f.present |= PF_QOPTS;
        f.qopts = *opts;
    }
    if (passive)
        f.flags |= PFL_PASSIVE;
    return client_request_ok (self, &f, count_p);
}

fedq_rc_t
fedq_client_delete_queue (fedq_client_t *self, const char *name,
                          bool if_unused, uint64_t *count_p)
{
    assert (self);
    fedq_rc_t rc = client_check_name (self, "queue", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    client_frame_init (&f, PROTO_DELETE_QUEUE);
    f.present = PF_NAME;
    f.name = fedq_str_of (name);
    if (if_unused)
        f.flags |= PFL_IF_UNUSED;
    return client_request_ok (self, &f, count_p);
}

fedq_rc_t
fedq_client_purge_queue (fedq_client_t *self, const char *name,
                         uint64_t *count_p)
{
    assert (self);
    fedq_rc_t rc = client_check_name (self, "queue", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    client_frame_init (&f, PROTO_PURGE_QUEUE);
    f.present = PF_NAME;
    f.name = fedq_str_of (name);
    return client_request_ok (self, &f, count_p);
}

fedq_rc_t
fedq_client_declare_exchange (fedq_client_t *self, const char *name,
                              const char *type, bool passive)
{
    assert (self);
    fedq_rc_t rc = client_check_name (self, "exchange", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    client_frame_init (&f, PROTO_DECLARE_EXCHANGE);
    f.present = PF_NAME | PF_TYPE;
    f.name = fedq_str_of (name);
    f.type = fedq_str_of (type ? type : "direct");
    if (passive)
        f.flags |= PFL_PASSIVE;
    return client_request_ok (self, &f, NULL);
}

fedq_rc_t
fedq_client_delete_exchange (fedq_client_t *self, const char *name)
{
    assert (self);
    fedq_rc_t rc = client_check_name (self, "exchange", name);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    client_frame_init (&f, PROTO_DELETE_EXCHANGE);
    f.present = PF_NAME;
    f.name = fedq_str_of (name);
    return client_request_ok (self, &f, NULL);
}

static fedq_rc_t
s_binding (fedq_client_t *self, proto_cmd_t cmd, const char *exchange,
           const char *queue, const char *key)
{
    fedq_rc_t rc = client_check_name (self, "exchange", exchange);
    if (rc == FEDQ_OK)
        rc = client_check_name (self, "queue", queue);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    client_frame_init (&f, cmd);
    f.present = PF_EXCHANGE | PF_QUEUE | PF_KEY;
    f.exchange = fedq_str_of (exchange);
    f.queue = fedq_str_of (queue);
    f.key = fedq_str_of (key ? key : "");
    return client_request_ok (self, &f, NULL);
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
    client_frame_init (&f, PROTO_STATUS);
    fedq_rc_t rc = client_request (self, &f, &reply);
    if (rc != FEDQ_OK)
        return rc;
    if (reply.cmd != PROTO_STATUS_OK || !(reply.present & PF_JSON))
        return client_fail (self, FEDQ_EPROTO,
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
    client_frame_init (&f, PROTO_PING);
    fedq_rc_t rc = client_request (self, &f, &reply);
    if (rc != FEDQ_OK)
        return rc;
    if (reply.cmd != PROTO_PONG)
        return client_fail (self, FEDQ_EPROTO, "node answered PING with %s",
                            proto_cmd_name ((int) reply.cmd));
    if (rtt_us_p)
        *rtt_us_p = fedq_mono_us () - start;
    return FEDQ_OK;
}

