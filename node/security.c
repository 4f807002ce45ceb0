//  node/security.c — the node's CURVE server: its key pair, the set of
//  authorized keys, and the ZAP handler (ZeroMQ RFC 27) that libzmq asks
//  about every CURVE connection to the node's ROUTER.
//
//  The ZAP handler is a thread with two sockets in the node's context: a
//  REP bound at inproc://zeromq.zap.01 (libzmq's fixed address) and a PAIR
//  to the event loop. It owns its own copy of the authorized keys, which
//  the loop replaces by sending a new copy (the pointer is handed over:
//  the thread owns it from then on). It shares nothing else but one
//  atomic counter of refused handshakes. Its answer carries the key NAME
//  as the ZAP user id, which libzmq attaches to every message of the
//  connection (zmq_msg_gets (msg, "User-Id")), so sessions know who is
//  who (security_keys_authorize).
#define _GNU_SOURCE
#include "security.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECURITY_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define SECURITY_ZAP_DOMAIN "fedq"
#define SECURITY_LOG_EVERY_MS 10000 //  refusals: at most one line per 10 s
#define SECURITY_ZAP_PARTS 8        //  parts of a ZAP request we look at

struct _security_t {
    void *zmq_ctx;
    void *pipe;                 //  PAIR to the ZAP thread
    char pipe_endpoint[64];
    pthread_t thread;
    bool thread_running;
    security_keys_t *keys;      //  the loop's set (sessions)
    security_keys_t *handover;  //  the thread's first set, until it starts
    uint8_t public_key[32];
    uint8_t secret_key[32];     //  never logged
    atomic_uint_least64_t refused;      //  ZAP 400 answers
    bool client_keys;           //  handed to security_client_keys
};

//  --------------------------------------------------------------------
//  The ZAP handler thread

typedef struct {
    security_keys_t *keys;      //  owned by the thread
    atomic_uint_least64_t *refused;
    int64_t last_log;           //  mono ms of the last refusal logged
    uint64_t unlogged;          //  refusals since
} s_zap_t;

static void
s_send_str (void *sock, const char *text, int flags)
{
    zmq_send (sock, text, strlen (text), flags);
}

//  Answer one ZAP request (parts[0..n)) on rep.
static void
s_zap_answer (s_zap_t *zap, void *rep, zmq_msg_t *parts, size_t n)
{
    const char *status = "500", *text = "malformed ZAP request";
    const char *user = "";
    char z85[SECURITY_KEY_Z85 + 1] = "";
    char address[64] = "?";
    bool curve = n >= 7 && zmq_msg_size (&parts[5]) == 5
                 && memcmp (zmq_msg_data (&parts[5]), "CURVE", 5) == 0;
    if (n >= 6 && zmq_msg_size (&parts[0]) == 3
        && memcmp (zmq_msg_data (&parts[0]), "1.0", 3) == 0) {
        snprintf (address, sizeof address, "%.*s",
                  (int) zmq_msg_size (&parts[3]),
                  (const char *) zmq_msg_data (&parts[3]));
        if (!curve || zmq_msg_size (&parts[6]) != 32) {
            status = "400";
            text = "fedq accepts CURVE connections only";
        }
        else {
            const uint8_t *key = zmq_msg_data (&parts[6]);
            const char *name = security_keys_name_of (zap->keys, key);
            zmq_z85_encode (z85, key, 32);
            if (name) {
                status = "200";
                text = "OK";
                user = name;
            }
            else {
                status = "400";
                text = "key not authorized";
            }
        }
    }
    if (strcmp (status, "200") != 0) {
        atomic_fetch_add (zap->refused, 1);
        int64_t now = fedq_mono_ms ();
        if (now - zap->last_log >= SECURITY_LOG_EVERY_MS) {
            char more[64] = "";
            if (zap->unlogged)
                snprintf (more, sizeof more,
                          "; %" PRIu64 " more refused since the last line",
                          zap->unlogged);
            fedq_warn ("security: refused a connection from %s: %s%s%s%s%s",
                       address, text, z85[0] ? " (public key " : "", z85,
                       z85[0] ? ")" : "", more);
            zap->last_log = now;
            zap->unlogged = 0;
        }
        else
            zap->unlogged++;
    }
    s_send_str (rep, "1.0", ZMQ_SNDMORE);
    if (n >= 2)
        zmq_send (rep, zmq_msg_data (&parts[1]), zmq_msg_size (&parts[1]),
                  ZMQ_SNDMORE);
    else
        zmq_send (rep, "", 0, ZMQ_SNDMORE);
    s_send_str (rep, status, ZMQ_SNDMORE);
    s_send_str (rep, text, ZMQ_SNDMORE);
    s_send_str (rep, user, ZMQ_SNDMORE);
    zmq_send (rep, "", 0, 0);
}

//  Read one multipart message into parts (the first SECURITY_ZAP_PARTS);
//  the number kept, or 0 when the socket failed (context terminated).
static size_t
s_recv_parts (void *sock, zmq_msg_t *parts)
{
    size_t n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t scratch, *part = n < SECURITY_ZAP_PARTS ? &parts[n]
                                                          : &scratch;
        zmq_msg_init (part);
        if (zmq_msg_recv (part, sock, 0) < 0) {
            zmq_msg_close (part);
            for (size_t i = 0; i < n; i++)
                zmq_msg_close (&parts[i]);
            return 0;
        }
        more = zmq_msg_more (part);
        if (n < SECURITY_ZAP_PARTS)
            n++;
        else
            zmq_msg_close (part);
    }
    return n;
}

static void *
s_zap_thread (void *arg)
{
    security_t *self = arg;
    s_zap_t zap = {.keys = self->handover, .refused = &self->refused,
                   .last_log = -SECURITY_LOG_EVERY_MS};
    self->handover = NULL;
    void *pipe = zmq_socket (self->zmq_ctx, ZMQ_PAIR);
    void *rep = zmq_socket (self->zmq_ctx, ZMQ_REP);
    int zero = 0;
    zmq_setsockopt (pipe, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (rep, ZMQ_LINGER, &zero, sizeof zero);
    bool ok = zmq_connect (pipe, self->pipe_endpoint) == 0;
    int err = 0;
    if (ok && zmq_bind (rep, SECURITY_ZAP_ENDPOINT) != 0) {
        err = errno;
        ok = false;
    }
    char ready[32];
    snprintf (ready, sizeof ready, "%s %d", ok ? "READY" : "FAILED", err);
    s_send_str (pipe, ready, 0);
    while (ok) {
        zmq_pollitem_t items[2] = {{pipe, 0, ZMQ_POLLIN, 0},
                                   {rep, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        zmq_msg_t parts[SECURITY_ZAP_PARTS];
        if (items[1].revents & ZMQ_POLLIN) {
            size_t n = s_recv_parts (rep, parts);
            if (n == 0)
                break;
            s_zap_answer (&zap, rep, parts, n);
            for (size_t i = 0; i < n; i++)
                zmq_msg_close (&parts[i]);
        }
        if (items[0].revents & ZMQ_POLLIN) {
            size_t n = s_recv_parts (pipe, parts);
            if (n == 0)
                break;
            bool term = zmq_msg_size (&parts[0]) == 4
                        && memcmp (zmq_msg_data (&parts[0]), "TERM", 4) == 0;
            if (n == 2 && zmq_msg_size (&parts[1]) == sizeof (void *)) {
                security_keys_t *keys;
                memcpy (&keys, zmq_msg_data (&parts[1]), sizeof keys);
                security_keys_destroy (&zap.keys);
                zap.keys = keys;
                //  The loop waits for this: refused from then on.
                s_send_str (pipe, "SWAPPED", 0);
            }
            for (size_t i = 0; i < n; i++)
                zmq_msg_close (&parts[i]);
            if (term)
                break;
        }
    }
    zmq_close (rep);
    zmq_close (pipe);
    security_keys_destroy (&zap.keys);
    return NULL;
}

//  --------------------------------------------------------------------
//  The node's key pair

//  Load secret_key (both keys; the public one must belong to the secret
//  one). FEDQ_ECONFIG, logged, when the file cannot be used.
static fedq_rc_t
s_load_own_keys (security_t *self, const char *path)
{
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        fedq_error ("node.security.secret_key: cannot read %s as a key "
                    "file; give it the NAME.key written by `fedq keygen "
                    "NAME`",
                    path);
        return FEDQ_ECONFIG;
    }
    fedq_rc_t rc = FEDQ_ECONFIG;
    const char *pub = zconfig_get (root, "/curve/public-key", NULL);
    const char *sec = zconfig_get (root, "/curve/secret-key", NULL);
    char derived[SECURITY_KEY_Z85 + 1];
    if (!sec || strlen (sec) != SECURITY_KEY_Z85)
        fedq_error ("node.security.secret_key: %s holds no secret key; give "
                    "it the NAME.key written by `fedq keygen NAME` (NAME.pub "
                    "is the public half)",
                    path);
    else if (!pub || strlen (pub) != SECURITY_KEY_Z85
             || zmq_curve_public (derived, sec) != 0
             || strcmp (derived, pub) != 0)
        fedq_error ("node.security.secret_key: the public key in %s does not "
                    "belong to its secret key; make a new pair with `fedq "
                    "keygen NAME`",
                    path);
    else if (!zmq_z85_decode (self->public_key, pub)
             || !zmq_z85_decode (self->secret_key, sec))
        fedq_error ("node.security.secret_key: %s: keys are not Z85 text",
                    path);
    else {
        rc = FEDQ_OK;
        fedq_info ("security: CURVE on, this node's public key is %s", pub);
    }
    zconfig_destroy (&root);
    return rc;
}

//  --------------------------------------------------------------------
//  Life cycle

security_t *
security_new (void *zmq_ctx, const cfg_security_t *cfg)
{
    assert (zmq_ctx && cfg);
    if (!cfg->secret_key || !cfg->authorized_keys) {
        fedq_error ("node.security needs secret_key and authorized_keys for "
                    "CURVE");
        return NULL;
    }
    if (!zmq_has ("curve")) {
        fedq_error ("node.security: this libzmq was built without CURVE; "
                    "install a libzmq with libsodium support");
        return NULL;
    }
    security_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->zmq_ctx = zmq_ctx;
    atomic_init (&self->refused, 0);
    if (s_load_own_keys (self, cfg->secret_key))
        goto failed;
    self->keys = security_keys_load (cfg->authorized_keys);
    if (!self->keys)
        goto failed;
    fedq_info ("security: %zu authorized keys in %s",
               security_keys_size (self->keys), cfg->authorized_keys);

    //  The handler must be bound before the ROUTER accepts anything:
    //  libzmq lets every CURVE client in when no handler is bound.
    snprintf (self->pipe_endpoint, sizeof self->pipe_endpoint,
              "inproc://fedq-security-%p", (void *) self);
    self->pipe = zmq_socket (zmq_ctx, ZMQ_PAIR);
    int zero = 0;
    zmq_setsockopt (self->pipe, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind (self->pipe, self->pipe_endpoint) != 0) {
        fedq_error ("security: cannot bind %s: %s", self->pipe_endpoint,
                    zmq_strerror (errno));
        goto failed;
    }
    self->handover = security_keys_copy (self->keys);
    if (pthread_create (&self->thread, NULL, s_zap_thread, self) != 0) {
        fedq_error ("security: cannot start the ZAP handler thread");
        security_keys_destroy (&self->handover);
        goto failed;
    }
    self->thread_running = true;
    char ready[32] = "";
    int got = zmq_recv (self->pipe, ready, sizeof ready - 1, 0);
    if (got < 0 || strncmp (ready, "READY", 5) != 0) {
        //  The thread has ended (its sockets are closed): reap it.
        pthread_join (self->thread, NULL);
        self->thread_running = false;
        int err = got > 5 ? atoi (ready + 7) : 0;
        fedq_error ("security: cannot start the ZAP handler at %s: %s "
                    "(is another handler bound in this process?)",
                    SECURITY_ZAP_ENDPOINT, err ? zmq_strerror (err) : "?");
        goto failed;
    }
    security_client_keys (self->public_key, self->secret_key);
    self->client_keys = true;
    return self;
failed:
    security_destroy (&self);
    return NULL;
}

void
security_destroy (security_t **self_p)
{
    security_t *self = *self_p;
    if (!self)
        return;
    if (self->thread_running) {
        s_send_str (self->pipe, "TERM", 0);
        pthread_join (self->thread, NULL);
    }
    if (self->pipe)
        zmq_close (self->pipe);
    security_keys_destroy (&self->keys);
    security_keys_destroy (&self->handover);
    if (self->client_keys)
        security_client_keys (NULL, NULL);
    memset (self->secret_key, 0, sizeof self->secret_key);
    free (self);
    *self_p = NULL;
}

fedq_rc_t
security_server (security_t *self, void *router)
{
    int one = 1;
    if (zmq_setsockopt (router, ZMQ_CURVE_SERVER, &one, sizeof one)
        || zmq_setsockopt (router, ZMQ_CURVE_PUBLICKEY, self->public_key, 32)
        || zmq_setsockopt (router, ZMQ_CURVE_SECRETKEY, self->secret_key, 32)
        || zmq_setsockopt (router, ZMQ_ZAP_DOMAIN, SECURITY_ZAP_DOMAIN,
                           strlen (SECURITY_ZAP_DOMAIN))) {
        fedq_error ("security: cannot make the endpoint a CURVE server: %s",
                    zmq_strerror (errno));
        return FEDQ_EINVAL;
    }
    return FEDQ_OK;
}

fedq_rc_t
security_reload (security_t *self, const cfg_security_t *cfg)
{
    if (!cfg->authorized_keys)
        return FEDQ_ECONFIG;
    security_keys_t *keys = security_keys_load (cfg->authorized_keys);
    if (!keys) {
        fedq_error ("security: the authorized keys stay as they were");
        return FEDQ_EIO;
    }
    security_keys_t *copy = security_keys_copy (keys);
    if (zmq_send (self->pipe, "KEYS", 4, ZMQ_SNDMORE) != 4
        || zmq_send (self->pipe, &copy, sizeof copy, 0) != sizeof copy) {
        fedq_error ("security: cannot hand the new keys to the ZAP handler: "
                    "%s; the authorized keys stay as they were",
                    zmq_strerror (errno));
        security_keys_destroy (&copy);
        security_keys_destroy (&keys);
        return FEDQ_EIO;
    }
    //  Wait until the handler uses the new set, so that a key removed
    //  before the reload is refused by every handshake after it.
    char ack[16];
    if (zmq_recv (self->pipe, ack, sizeof ack, 0) < 0)
        fedq_error ("security: no answer from the ZAP handler: %s",
                    zmq_strerror (errno));
    security_keys_destroy (&self->keys);
    self->keys = keys;
    fedq_info ("security: reloaded %zu authorized keys from %s",
               security_keys_size (keys), cfg->authorized_keys);
    return FEDQ_OK;
}

security_keys_t *
security_keys (security_t *self)
{
    return self ? self->keys : NULL;
}

uint64_t
security_handshakes_refused (security_t *self)
{
    return self ? (uint64_t) atomic_load (&self->refused) : 0;
}

//  --------------------------------------------------------------------
//  Listening without CURVE

static bool
s_host_is_loopback (const char *host, size_t len)
{
    if (len >= 4 && strncmp (host, "127.", 4) == 0)
        return true;
    return (len == 9 && strncmp (host, "localhost", 9) == 0)
           || (len == 5 && strncmp (host, "[::1]", 5) == 0)
           || (len == 3 && strncmp (host, "::1", 3) == 0);
}

void
security_warn_insecure (const cfg_node_t *cfg)
{
    bool curve = cfg->has_security && cfg->security.secret_key;
    const char *listen = cfg->listen;
    if (curve || !listen || strncmp (listen, "tcp://", 6) != 0)
        return;
    const char *host = listen + 6;
    const char *colon = strrchr (host, ':');
    size_t len = colon ? (size_t) (colon - host) : strlen (host);
    if (s_host_is_loopback (host, len))
        return;
    fedq_warn ("node.listen %s is reachable beyond this machine WITHOUT "
               "CURVE (node.security.insecure: true): anyone who can reach "
               "it can publish, consume and open links; configure "
               "node.security secret_key and authorized_keys",
               listen);
}
