//  tests/unit/test_client.c — libfedq against a scripted fake node: a
//  ROUTER in a thread that speaks just enough of docs/protocol.md to check
//  requests and errors, pipelined publish with CONFIRM and RETURN, the
//  window, consume and get, heartbeats and BYE.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fedq_client.h"

#include <czmq.h>
#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    void *ctx;
    void *router;
    char endpoint[64];
    pthread_t thread;
    atomic_bool stop;
    //  Behaviour.
    atomic_bool silent;         //  answer nothing at all
    atomic_bool no_pong;        //  ignore PINGs
    atomic_bool hold_confirms;  //  send no CONFIRM
    //  What it saw.
    atomic_uint hello_hb;
    atomic_uint pings;
    atomic_uint byes;
    atomic_ulong published;
    atomic_ulong ack_dtag;
    atomic_bool ack_multiple;
    atomic_uint nacks;
    uint64_t unconfirmed;       //  highest seq not yet confirmed (thread)
} fake_t;

static void
s_reply (fake_t *f, zmq_msg_t *id, proto_frame_t *frame,
         const proto_msg_t *msg, const char *body)
{
    fedq_buf_t buf = {0};
    proto_frame_encode (frame, &buf);
    zmq_send (f->router, zmq_msg_data (id), zmq_msg_size (id), ZMQ_SNDMORE);
    zmq_send (f->router, buf.data, buf.size, msg ? ZMQ_SNDMORE : 0);
    if (msg) {
        fedq_buf_t env = {0};
        proto_msg_encode (msg, &env);
        zmq_send (f->router, env.data, env.size, ZMQ_SNDMORE);
        zmq_send (f->router, body, strlen (body), 0);
        fedq_buf_free (&env);
    }
    fedq_buf_free (&buf);
}

static void
s_frame (proto_frame_t *f, proto_cmd_t cmd, const proto_frame_t *req)
{
    memset (f, 0, sizeof *f);
    f->version = PROTO_VERSION;
    f->cmd = cmd;
    if (req && (req->present & PF_RID)) {
        f->present = PF_RID;
        f->rid = req->rid;
    }
}

static void
s_deliver (fake_t *f, zmq_msg_t *id, const proto_frame_t *req, uint64_t dtag,
           uint64_t seq, const char *body)
{
    proto_frame_t d;
    s_frame (&d, PROTO_DELIVER, req);
    d.present |= PF_TAG | PF_DTAG;
    d.tag = fedq_str_of ("t");
    d.dtag = dtag;
    proto_msg_t m;
    memset (&m, 0, sizeof m);
    m.origin = fedq_str_of ("fake");
    m.seq = seq;
    m.exchange = fedq_str_of ("ex");
    m.routing_key = fedq_str_of ("rk");
    m.published_at = 1700000000000;
    m.message_id = fedq_str_of ("mid");
    m.nheaders = 1;
    m.headers[0].key = fedq_str_of ("h");
    m.headers[0].value = fedq_str_of ("v");
    s_reply (f, id, &d, &m, body);
}

static void
s_handle (fake_t *f, zmq_msg_t *id, zmq_msg_t *parts, int nparts)
{
    proto_frame_t req, rep;
    const char *error;
    if (proto_frame_decode (zmq_msg_data (&parts[0]),
                            zmq_msg_size (&parts[0]), &req, &error)
        != FEDQ_OK)
        return;
    if (atomic_load (&f->silent))
        return;
    switch (req.cmd) {
        case PROTO_HELLO:
            atomic_store (&f->hello_hb, req.heartbeat_ms);
            s_frame (&rep, PROTO_HELLO_OK, &req);
            rep.present |= PF_NODE;
            rep.node = fedq_str_of ("fake");
            s_reply (f, id, &rep, NULL, NULL);
            break;
        case PROTO_DECLARE_QUEUE:
            if (fedq_str_eq (req.name, "missing")) {
                s_frame (&rep, PROTO_ERROR, &req);
                rep.present |= PF_CODE | PF_TEXT;
                rep.code = FEDQ_ENOTFOUND;
                rep.text = fedq_str_of ("queue \"missing\" not found");
            }
            else {
                s_frame (&rep, PROTO_OK, &req);
                rep.present |= PF_COUNT;
                rep.count = (req.present & PF_QOPTS) ? req.qopts.max_length
                                                     : 3;
            }
            s_reply (f, id, &rep, NULL, NULL);
            break;
        case PROTO_PURGE_QUEUE:
            s_frame (&rep, PROTO_OK, &req);
            rep.present |= PF_COUNT;
            rep.count = 7;
            s_reply (f, id, &rep, NULL, NULL);
            break;
        case PROTO_BIND:
        case PROTO_CANCEL:
            s_frame (&rep, PROTO_OK, &req);
            s_reply (f, id, &rep, NULL, NULL);
            break;
        case PROTO_STATUS:
            s_frame (&rep, PROTO_STATUS_OK, &req);
            rep.present |= PF_JSON;
            rep.json = fedq_str_of ("{\"node\":{\"id\":\"fake\"}}");
            s_reply (f, id, &rep, NULL, NULL);
            break;
        case PROTO_PING:
            atomic_fetch_add (&f->pings, 1);
            if (atomic_load (&f->no_pong))
                break;
            s_frame (&rep, PROTO_PONG, &req);
            s_reply (f, id, &rep, NULL, NULL);
            break;
        case PROTO_PUBLISH:
            if (nparts != 3)
                break;
            atomic_fetch_add (&f->published, 1);
            if (fedq_str_eq (req.key, "unroutable")) {
                s_frame (&rep, PROTO_RETURN, NULL);
                rep.present = PF_SEQ | PF_CODE | PF_TEXT;
                rep.seq = req.seq;
                rep.code = FEDQ_EUNROUTABLE;
                rep.text = fedq_str_of ("no route");
                s_reply (f, id, &rep, NULL, NULL);
            }
            f->unconfirmed = req.seq;
            break;
        case PROTO_CONSUME:
            s_frame (&rep, PROTO_OK, &req);
            s_reply (f, id, &rep, NULL, NULL);
            for (uint64_t i = 1; i <= 3; i++) {
                char body[16];
                snprintf (body, sizeof body, "m%d", (int) i);
                s_deliver (f, id, NULL, i, 10 + i, body);
            }
            break;
        case PROTO_GET:
            if (fedq_str_eq (req.queue, "empty")) {
                s_frame (&rep, PROTO_GET_EMPTY, &req);
                s_reply (f, id, &rep, NULL, NULL);
            }
            else
                s_deliver (f, id, &req, 100, 7, "got it");
            break;
        case PROTO_ACK:
            atomic_store (&f->ack_multiple,
                          (req.flags & PFL_MULTIPLE) != 0);
            atomic_store (&f->ack_dtag, req.dtag);
            break;
        case PROTO_NACK:
            atomic_fetch_add (&f->nacks, 1);
            break;
        case PROTO_BYE:
            atomic_fetch_add (&f->byes, 1);
            break;
    }
}

static void *
s_fake_run (void *arg)
{
    fake_t *f = arg;
    zmq_msg_t last_id;
    zmq_msg_init (&last_id);
    while (!atomic_load (&f->stop)) {
        zmq_pollitem_t item = {f->router, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll (&item, 1, 5);
        if (rc <= 0) {
            //  Idle: confirm what came in (a cumulative CONFIRM).
            if (f->unconfirmed && !atomic_load (&f->hold_confirms)
                && zmq_msg_size (&last_id)) {
                proto_frame_t c;
                s_frame (&c, PROTO_CONFIRM, NULL);
                c.present = PF_UPTO;
                c.upto = f->unconfirmed;
                f->unconfirmed = 0;
                s_reply (f, &last_id, &c, NULL, NULL);
            }
            continue;
        }
        zmq_msg_t id, parts[4];
        zmq_msg_init (&id);
        zmq_msg_recv (&id, f->router, 0);
        int n = 0;
        while (zmq_msg_more (n ? &parts[n - 1] : &id) && n < 4) {
            zmq_msg_init (&parts[n]);
            zmq_msg_recv (&parts[n], f->router, 0);
            n++;
        }
        zmq_msg_copy (&last_id, &id);
        if (n >= 1)
            s_handle (f, &id, parts, n);
        for (int i = 0; i < n; i++)
            zmq_msg_close (&parts[i]);
        zmq_msg_close (&id);
    }
    zmq_msg_close (&last_id);
    return NULL;
}

//  A fake node; a CURVE server when server_cert is given.
static fake_t *
s_fake_new_curve (zcert_t *server_cert)
{
    fake_t *f = calloc (1, sizeof *f);
    f->ctx = zmq_ctx_new ();
    f->router = zmq_socket (f->ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt (f->router, ZMQ_LINGER, &linger, sizeof linger);
    if (server_cert) {
        int as_server = 1;
        zmq_setsockopt (f->router, ZMQ_CURVE_SERVER, &as_server,
                        sizeof as_server);
        zmq_setsockopt (f->router, ZMQ_CURVE_SECRETKEY,
                        zcert_secret_key (server_cert), 32);
    }
    assert_int_equal (zmq_bind (f->router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof f->endpoint;
    zmq_getsockopt (f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len);
    pthread_create (&f->thread, NULL, s_fake_run, f);
    return f;
}

static fake_t *
s_fake_new (void)
{
    return s_fake_new_curve (NULL);
}

static void
s_fake_destroy (fake_t **f_p)
{
    fake_t *f = *f_p;
    atomic_store (&f->stop, true);
    pthread_join (f->thread, NULL);
    zmq_close (f->router);
    zmq_ctx_term (f->ctx);
    free (f);
    *f_p = NULL;
}

//  Wait up to 2 s for cond to hold (polling the client meanwhile).
#define S_EVENTUALLY(c, cond)                                                \
    do {                                                                     \
        int64_t deadline_ = fedq_mono_ms () + 2000;                          \
        while (!(cond) && fedq_mono_ms () < deadline_)                       \
            fedq_client_poll ((c), 5);                                       \
        assert_true (cond);                                                  \
    } while (0)

static void
test_requests (void **state)
{
    (void) state;
    fake_t *f = s_fake_new ();
    fedq_client_opts_t opts = {.timeout_ms = 2000, .heartbeat_ms = 777};
    fedq_client_t *c = fedq_client_new (f->endpoint, &opts);
    assert_non_null (c);
    assert_string_equal (fedq_client_node_id (c), "fake");
    assert_int_equal (atomic_load (&f->hello_hb), 777);
    uint64_t count = 0;
    assert_int_equal (fedq_client_declare_queue (c, "q", NULL, false, &count),
                      FEDQ_OK);
    assert_int_equal (count, 3);
    proto_qopts_t q = {.durable = true, .max_length = 99};
    assert_int_equal (fedq_client_declare_queue (c, "q", &q, false, &count),
                      FEDQ_OK);
    assert_int_equal (count, 99);
    assert_int_equal (
        fedq_client_declare_queue (c, "missing", NULL, true, NULL),
        FEDQ_ENOTFOUND);
    assert_int_equal (fedq_client_last_rc (c), FEDQ_ENOTFOUND);
    assert_string_equal (fedq_client_last_error (c),
                         "queue \"missing\" not found");
    assert_true (fedq_client_last_error_from_node (c));
    assert_int_equal (fedq_client_purge_queue (c, "q", &count), FEDQ_OK);
    assert_int_equal (count, 7);
    assert_int_equal (fedq_client_last_rc (c), FEDQ_OK);
    assert_int_equal (fedq_client_bind (c, "ex", "q", "a.#"), FEDQ_OK);
    char *json = NULL;
    assert_int_equal (fedq_client_status (c, &json), FEDQ_OK);
    assert_string_equal (json, "{\"node\":{\"id\":\"fake\"}}");
    free (json);
    int64_t rtt = -1;
    assert_int_equal (fedq_client_ping (c, &rtt), FEDQ_OK);
    assert_true (rtt >= 0);
    //  A name too long never leaves the client.
    char name[300];
    memset (name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    assert_int_equal (fedq_client_purge_queue (c, name, NULL), FEDQ_EINVAL);
    fedq_client_destroy (&c);
    assert_null (c);
    fedq_client_destroy (&c);
    //  BYE on destroy.
    int64_t deadline = fedq_mono_ms () + 2000;
    while (atomic_load (&f->byes) == 0 && fedq_mono_ms () < deadline)
        zmq_poll (NULL, 0, 5);
    assert_int_equal (atomic_load (&f->byes), 1);
    s_fake_destroy (&f);
}

static void
test_timeouts (void **state)
{
    (void) state;
    fake_t *f = s_fake_new ();
    atomic_store (&f->silent, true);
    fedq_client_opts_t opts = {.timeout_ms = 150};
    int64_t start = fedq_mono_ms ();
    fedq_client_t *c = fedq_client_new (f->endpoint, &opts);
    assert_null (c);
    assert_int_equal (fedq_client_last_rc (NULL), FEDQ_ETIMEOUT);
    assert_non_null (strstr (fedq_client_last_error (NULL), f->endpoint));
    assert_true (fedq_mono_ms () - start < 1500);
    //  A request without a reply times out, and the client goes on.
    atomic_store (&f->silent, false);
    c = fedq_client_new (f->endpoint, &opts);
    assert_non_null (c);
    atomic_store (&f->silent, true);
    assert_int_equal (fedq_client_bind (c, "e", "q", "k"), FEDQ_ETIMEOUT);
    assert_non_null (strstr (fedq_client_last_error (c), "BIND"));
    assert_false (fedq_client_last_error_from_node (c));
    atomic_store (&f->silent, false);
    assert_int_equal (fedq_client_bind (c, "e", "q", "k"), FEDQ_OK);
    fedq_client_destroy (&c);
    //  Bad arguments.
    assert_null (fedq_client_new ("nonsense", &opts));
    assert_int_equal (fedq_client_last_rc (NULL), FEDQ_EINVAL);
    fedq_client_opts_t half = {.key_file = "x.key"};
    assert_null (fedq_client_new (f->endpoint, &half));
    assert_int_equal (fedq_client_last_rc (NULL), FEDQ_EINVAL);
    fedq_client_opts_t nokey = {.key_file = "/nonexistent.key",
                                .server_key_file = "/nonexistent.pub"};
    assert_null (fedq_client_new (f->endpoint, &nokey));
    assert_non_null (strstr (fedq_client_last_error (NULL), "nonexistent"));
    s_fake_destroy (&f);
}

typedef struct {
    int settled[201];           //  times each seq was settled
    fedq_rc_t code[201];
    int confirmed;
    int returned;
} s_settle_log_t;

static void
s_on_settle (void *arg, uint64_t seq, fedq_rc_t code, const char *text)
{
    s_settle_log_t *log = arg;
    assert_true (seq >= 1 && seq <= 200);
    log->settled[seq]++;
    log->code[seq] = code;
    if (code == FEDQ_OK) {
        assert_null (text);
        log->confirmed++;
    }
    else {
        assert_string_equal (text, "no route");
        log->returned++;
    }
}

static void
test_publish (void **state)
{
    (void) state;
    fake_t *f = s_fake_new ();
    fedq_client_opts_t opts = {.timeout_ms = 2000, .window = 16};
    fedq_client_t *c = fedq_client_new (f->endpoint, &opts);
    assert_non_null (c);
    s_settle_log_t *log = calloc (1, sizeof *log);
    fedq_client_set_settle_handler (c, s_on_settle, log);
    proto_header_t h = {fedq_str_of ("k"), fedq_str_of ("v")};
    for (int i = 1; i <= 200; i++) {
        fedq_message_t m = {.exchange = "ex",
                            .routing_key = i % 10 ? "ok" : "unroutable",
                            .message_id = "id",
                            .headers = &h,
                            .nheaders = 1,
                            .priority = 1};
        assert_int_equal (fedq_client_publish (c, &m, "body", 4), i);
        fedq_publish_stats_t st;
        fedq_client_publish_stats (c, &st);
        assert_true (st.unsettled <= 16);
    }
    assert_int_equal (fedq_client_wait_confirms (c, 2000), FEDQ_OK);
    fedq_publish_stats_t st;
    fedq_client_publish_stats (c, &st);
    assert_int_equal (st.published, 200);
    assert_int_equal (st.confirmed, 180);
    assert_int_equal (st.returned, 20);
    assert_int_equal (st.unsettled, 0);
    assert_int_equal (st.last_return_code, FEDQ_EUNROUTABLE);
    assert_int_equal (log->confirmed, 180);
    assert_int_equal (log->returned, 20);
    for (int i = 1; i <= 200; i++) {
        assert_int_equal (log->settled[i], 1);
        assert_int_equal (log->code[i],
                          i % 10 ? FEDQ_OK : FEDQ_EUNROUTABLE);
    }
    //  Invalid messages are refused before sending.
    fedq_message_t bad = {.exchange = "ex", .routing_key = "ok",
                          .priority = 10};
    assert_int_equal (fedq_client_publish (c, &bad, "", 0), FEDQ_EINVAL);
    fedq_client_destroy (&c);
    free (log);
    s_fake_destroy (&f);
}

static void
test_publish_window (void **state)
{
    (void) state;
    fake_t *f = s_fake_new ();
    atomic_store (&f->hold_confirms, true);
    fedq_client_opts_t opts = {.timeout_ms = 200, .window = 5};
    fedq_client_t *c = fedq_client_new (f->endpoint, &opts);
    assert_non_null (c);
    fedq_message_t m = {.exchange = "", .routing_key = "q"};
    for (int i = 1; i <= 5; i++)
        assert_int_equal (fedq_client_publish (c, &m, "x", 1), i);
    //  The window is full: publish waits, then gives up.
    int64_t start = fedq_mono_ms ();
    assert_int_equal (fedq_client_publish (c, &m, "x", 1), FEDQ_ETIMEOUT);
    assert_true (fedq_mono_ms () - start >= 150);
    assert_int_equal (fedq_client_wait_confirms (c, 50), FEDQ_ETIMEOUT);
    fedq_publish_stats_t st;
    fedq_client_publish_stats (c, &st);
    assert_int_equal (st.unsettled, 5);
    //  Confirms free the window.
    atomic_store (&f->hold_confirms, false);
    assert_int_equal (fedq_client_publish (c, &m, "x", 1), 6);
    assert_int_equal (fedq_client_wait_confirms (c, 2000), FEDQ_OK);
    fedq_client_publish_stats (c, &st);
    assert_int_equal (st.confirmed, 6);
    fedq_client_destroy (&c);
    s_fake_destroy (&f);
}

static void
test_consume_and_get (void **state)
{
    (void) state;
    fake_t *f = s_fake_new ();
    fedq_client_opts_t opts = {.timeout_ms = 2000};
    fedq_client_t *c = fedq_client_new (f->endpoint, &opts);
    assert_non_null (c);
    assert_int_equal (fedq_client_consume (c, "q", "t", 10, false), FEDQ_OK);
    fedq_delivery_t d;
    memset (&d, 0, sizeof d);
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal (fedq_client_recv (c, &d, 2000), FEDQ_OK);
        assert_int_equal (d.dtag, i);
        assert_int_equal (d.msg.seq, 10 + i);
        assert_true (fedq_str_eq (d.msg.origin, "fake"));
        assert_true (fedq_str_eq (d.msg.message_id, "mid"));
        assert_true (fedq_str_eq (d.msg.exchange, "ex"));
        assert_true (fedq_str_eq (d.msg.routing_key, "rk"));
        assert_int_equal (d.msg.nheaders, 1);
        assert_true (fedq_str_eq (d.msg.headers[0].value, "v"));
        char body[8];
        snprintf (body, sizeof body, "m%d", (int) i);
        assert_int_equal (d.body_size, 2);
        assert_memory_equal (d.body, body, 2);
    }
    assert_int_equal (fedq_client_recv (c, &d, 50), FEDQ_ETIMEOUT);
    assert_int_equal (fedq_client_recv (c, &d, 0), FEDQ_ETIMEOUT);
    assert_int_equal (fedq_client_ack (c, 3, true), FEDQ_OK);
    S_EVENTUALLY (c, atomic_load (&f->ack_dtag) == 3);
    assert_true (atomic_load (&f->ack_multiple));
    assert_int_equal (fedq_client_nack (c, 2, false, false), FEDQ_OK);
    S_EVENTUALLY (c, atomic_load (&f->nacks) == 1);
    //  Get: one message, or empty.
    assert_int_equal (fedq_client_get (c, "q", false, &d), FEDQ_OK);
    assert_int_equal (d.dtag, 100);
    assert_int_equal (d.body_size, 6);
    assert_memory_equal (d.body, "got it", 6);
    assert_int_equal (fedq_client_get (c, "empty", false, &d), FEDQ_EAGAIN);
    assert_false (d.held);
    assert_int_equal (fedq_client_cancel (c, "t"), FEDQ_OK);
    fedq_delivery_release (&d);
    fedq_delivery_release (&d);
    fedq_client_destroy (&c);
    s_fake_destroy (&f);
}

static void
test_heartbeat (void **state)
{
    (void) state;
    fake_t *f = s_fake_new ();
    fedq_client_opts_t opts = {.timeout_ms = 1000, .heartbeat_ms = 40};
    fedq_client_t *c = fedq_client_new (f->endpoint, &opts);
    assert_non_null (c);
    //  Idle: PINGs go out about every heartbeat.
    S_EVENTUALLY (c, atomic_load (&f->pings) >= 3);
    //  A node that stops answering is declared gone after 3 heartbeats.
    atomic_store (&f->no_pong, true);
    int64_t start = fedq_mono_ms ();
    fedq_rc_t rc = fedq_client_poll (c, 2000);
    assert_int_equal (rc, FEDQ_EIO);
    assert_true (fedq_mono_ms () - start < 1000);
    assert_non_null (strstr (fedq_client_last_error (c), "stopped answering"));
    assert_int_equal (fedq_client_bind (c, "e", "q", "k"), FEDQ_EIO);
    fedq_client_destroy (&c);
    s_fake_destroy (&f);
}

static void
test_curve (void **state)
{
    (void) state;
    if (!zmq_has ("curve"))
        skip ();
    char dir[] = "/tmp/test_client_XXXXXX";
    assert_non_null (mkdtemp (dir));
    char client_key[128], server_pub[128], other_pub[128];
    snprintf (client_key, sizeof client_key, "%s/client.key", dir);
    snprintf (server_pub, sizeof server_pub, "%s/server.pub", dir);
    snprintf (other_pub, sizeof other_pub, "%s/other.pub", dir);
    zcert_t *server = zcert_new ();
    zcert_t *client = zcert_new ();
    zcert_t *other = zcert_new ();
    assert_int_equal (zcert_save_secret (client, client_key), 0);
    assert_int_equal (zcert_save_public (server, server_pub), 0);
    assert_int_equal (zcert_save_public (other, other_pub), 0);
    fake_t *f = s_fake_new_curve (server);
    //  The right server key: a session.
    fedq_client_opts_t opts = {.timeout_ms = 2000,
                               .key_file = client_key,
                               .server_key_file = server_pub};
    fedq_client_t *c = fedq_client_new (f->endpoint, &opts);
    assert_non_null (c);
    assert_int_equal (fedq_client_ping (c, NULL), FEDQ_OK);
    fedq_client_destroy (&c);
    //  The wrong one: the handshake fails, nothing is answered.
    opts.server_key_file = other_pub;
    opts.timeout_ms = 300;
    assert_null (fedq_client_new (f->endpoint, &opts));
    assert_int_equal (fedq_client_last_rc (NULL), FEDQ_ETIMEOUT);
    assert_non_null (strstr (fedq_client_last_error (NULL), "CURVE keys"));
    //  A public key where the secret one belongs.
    opts.key_file = server_pub;
    opts.server_key_file = server_pub;
    assert_null (fedq_client_new (f->endpoint, &opts));
    assert_int_equal (fedq_client_last_rc (NULL), FEDQ_EINVAL);
    assert_non_null (strstr (fedq_client_last_error (NULL), "no secret key"));
    //  A plain client gets nowhere with a CURVE node.
    fedq_client_opts_t plain = {.timeout_ms = 300};
    assert_null (fedq_client_new (f->endpoint, &plain));
    s_fake_destroy (&f);
    zcert_destroy (&server);
    zcert_destroy (&client);
    zcert_destroy (&other);
    unlink (client_key);
    unlink (server_pub);
    unlink (other_pub);
    rmdir (dir);
}

int
main (void)
{
    fedq_log_setup (FEDQ_LOG_ERROR, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_requests),
        cmocka_unit_test (test_timeouts),
        cmocka_unit_test (test_publish),
        cmocka_unit_test (test_publish_window),
        cmocka_unit_test (test_consume_and_get),
        cmocka_unit_test (test_heartbeat),
        cmocka_unit_test (test_curve),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
