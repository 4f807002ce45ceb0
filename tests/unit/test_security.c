//  tests/unit/test_security.c — node/security.h: the authorized-keys
//  loader and its decisions, the ZAP handler in a real ZeroMQ context
//  (accept, refuse, name the connection, reload), CURVE clients for links,
//  the node's own key checks, and the SHA-256 body digest.
#define _GNU_SOURCE
#include "security.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

//  --- fixtures ------------------------------------------------------------

typedef struct {
    char dir[64];               //  temp folder
    char auth[96];              //  its authorized/ folder
} s_tmp_t;

static void
s_tmp_make (s_tmp_t *t)
{
    snprintf (t->dir, sizeof t->dir, "/tmp/fedq-test-security-XXXXXX");
    assert_non_null (mkdtemp (t->dir));
    snprintf (t->auth, sizeof t->auth, "%s/authorized", t->dir);
    assert_int_equal (mkdir (t->auth, 0700), 0);
}

static void
s_tmp_remove (s_tmp_t *t)
{
    char cmd[256];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    assert_int_equal (system (cmd), 0);
}

//  Write a key pair NAME.key in dir and NAME.pub in pub_dir, with
//  metadata pairs (key, value, ..., NULL). Returns the cert (caller
//  destroys).
static zcert_t *
s_keypair (const char *dir, const char *pub_dir, const char *name, ...)
{
    zcert_t *cert = zcert_new ();
    assert_non_null (cert);
    va_list args;
    va_start (args, name);
    const char *k;
    while ((k = va_arg (args, const char *))) {
        const char *v = va_arg (args, const char *);
        zcert_set_meta (cert, k, "%s", v);
    }
    va_end (args);
    char path[256];
    snprintf (path, sizeof path, "%s/%s.key", dir, name);
    assert_int_equal (zcert_save_secret (cert, path), 0);
    chmod (path, 0600);
    if (pub_dir) {
        snprintf (path, sizeof path, "%s/%s.pub", pub_dir, name);
        assert_int_equal (zcert_save_public (cert, path), 0);
    }
    return cert;
}

static proto_frame_t
s_frame (proto_cmd_t cmd, const char *link, const char *queue,
         const char *node)
{
    proto_frame_t f = {.version = PROTO_VERSION, .cmd = cmd};
    if (link) {
        f.present |= PF_LINK;
        f.link = fedq_str_of (link);
    }
    if (queue) {
        f.present |= PF_QUEUE;
        f.queue = fedq_str_of (queue);
    }
    if (node) {
        f.present |= PF_NODE;
        f.node = fedq_str_of (node);
    }
    return f;
}

static fedq_rc_t
s_may (security_keys_t *keys, const char *name, proto_frame_t f, char *why)
{
    why[0] = 0;
    return security_keys_authorize (keys, name, &f, why, 512);
}

//  --- the authorized-keys directory ---------------------------------------

static void
test_keys_load_and_decide (void **state)
{
    (void) state;
    s_tmp_t t;
    s_tmp_make (&t);
    zcert_t *alice = s_keypair (t.dir, t.auth, "alice", "role", "client",
                                NULL);
    zcert_t *syd = s_keypair (t.dir, t.auth, "sydney", "role", "peer",
                              "links", "outbox-to-mel, other", "queues",
                              "audit", NULL);
    zcert_t *any = s_keypair (t.dir, t.auth, "perth", "role", "peer", NULL);
    zcert_t *none = s_keypair (t.dir, t.auth, "closed", "role", "peer",
                               "links", "", "queues", "", NULL);
    zcert_t *alias = s_keypair (t.dir, t.auth, "edge-7", "role", "peer",
                                "node", "darwin", NULL);
    //  Skipped: no role, a role nobody knows, a secret key in the folder,
    //  the same key twice, a bad name; ignored: not NAME.pub.
    zcert_t *norole = s_keypair (t.dir, t.auth, "norole", NULL);
    zcert_t *weird = s_keypair (t.dir, t.auth, "weird", "role", "admin",
                                NULL);
    char path[256];
    snprintf (path, sizeof path, "%s/leaked.pub", t.auth);
    zcert_t *leaked = zcert_new ();
    zcert_set_meta (leaked, "role", "client");
    assert_int_equal (zcert_save_secret (leaked, path), 0);
    snprintf (path, sizeof path, "%s/zz-copy.pub", t.auth);
    assert_int_equal (zcert_save_public (alice, path), 0);
    snprintf (path, sizeof path, "%s/bad name.pub", t.auth);
    assert_int_equal (zcert_save_public (weird, path), 0);
    snprintf (path, sizeof path, "%s/notes.txt", t.auth);
    FILE *f = fopen (path, "w");
    fputs ("not a key\n", f);
    fclose (f);

    security_keys_t *keys = security_keys_load (t.auth);
    assert_non_null (keys);
    assert_int_equal (security_keys_size (keys), 5);
    assert_string_equal (
      security_keys_name_of (keys, zcert_public_key (alice)), "alice");
    assert_string_equal (
      security_keys_name_of (keys, zcert_public_key (syd)), "sydney");
    assert_null (security_keys_name_of (keys, zcert_public_key (norole)));
    assert_null (security_keys_name_of (keys, zcert_public_key (leaked)));

    char why[512];
    //  A client: client commands, nothing of links or federation.
    assert_int_equal (s_may (keys, "alice",
                             s_frame (PROTO_HELLO, NULL, NULL, NULL), why),
                      FEDQ_OK);
    assert_int_equal (s_may (keys, "alice",
                             s_frame (PROTO_PUBLISH, NULL, NULL, NULL), why),
                      FEDQ_OK);
    assert_int_equal (s_may (keys, "alice",
                             s_frame (PROTO_LINK_HELLO, "x", NULL, "alice"),
                             why),
                      FEDQ_EDENIED);
    assert_non_null (strstr (why, "role client"));
    assert_int_equal (s_may (keys, "alice",
                             s_frame (PROTO_LINK_MSG, "x", NULL, NULL), why),
                      FEDQ_EDENIED);
    assert_int_equal (s_may (keys, "alice",
                             s_frame (PROTO_FED_HELLO, NULL, "audit",
                                      "alice"),
                             why),
                      FEDQ_EDENIED);
    assert_int_equal (s_may (keys, "alice",
                             s_frame (PROTO_FED_EVENT, NULL, NULL, NULL),
                             why),
                      FEDQ_EDENIED);

    //  A peer bound to links and queues, speaking for its own NAME.
    assert_int_equal (s_may (keys, "sydney",
                             s_frame (PROTO_LINK_HELLO, "outbox-to-mel",
                                      NULL, "sydney"),
                             why),
                      FEDQ_OK);
    assert_int_equal (s_may (keys, "sydney",
                             s_frame (PROTO_LINK_HELLO, "other", NULL,
                                      "sydney"),
                             why),
                      FEDQ_OK);
    assert_int_equal (s_may (keys, "sydney",
                             s_frame (PROTO_LINK_HELLO, "outbox", NULL,
                                      "sydney"),
                             why),
                      FEDQ_EDENIED);
    assert_non_null (strstr (why, "may not open link \"outbox\""));
    assert_non_null (strstr (why, "outbox-to-mel, other"));
    assert_int_equal (s_may (keys, "sydney",
                             s_frame (PROTO_LINK_HELLO, "other", NULL,
                                      "perth"),
                             why),
                      FEDQ_EDENIED);
    assert_non_null (strstr (why, "speaks for node \"sydney\""));
    assert_int_equal (s_may (keys, "sydney",
                             s_frame (PROTO_FED_HELLO, NULL, "audit",
                                      "sydney"),
                             why),
                      FEDQ_OK);
    assert_int_equal (s_may (keys, "sydney",
                             s_frame (PROTO_FED_HELLO, NULL, "orders",
                                      "sydney"),
                             why),
                      FEDQ_EDENIED);
    assert_non_null (strstr (why, "may not federate queue \"orders\""));
    assert_int_equal (s_may (keys, "sydney",
                             s_frame (PROTO_CONSUME, NULL, "orders", NULL),
                             why),
                      FEDQ_OK);

    //  No lists: any; empty lists: none; node from metadata.
    assert_int_equal (s_may (keys, "perth",
                             s_frame (PROTO_LINK_HELLO, "anything", NULL,
                                      "perth"),
                             why),
                      FEDQ_OK);
    assert_int_equal (s_may (keys, "perth",
                             s_frame (PROTO_FED_HELLO, NULL, "q", "perth"),
                             why),
                      FEDQ_OK);
    assert_int_equal (s_may (keys, "closed",
                             s_frame (PROTO_LINK_HELLO, "l", NULL, "closed"),
                             why),
                      FEDQ_EDENIED);
    assert_non_null (strstr (why, "(none)"));
    assert_int_equal (s_may (keys, "edge-7",
                             s_frame (PROTO_LINK_HELLO, "l", NULL, "darwin"),
                             why),
                      FEDQ_OK);
    assert_int_equal (s_may (keys, "edge-7",
                             s_frame (PROTO_LINK_HELLO, "l", NULL, "edge-7"),
                             why),
                      FEDQ_EDENIED);

    //  Unknown names may send nothing.
    assert_int_equal (s_may (keys, "norole",
                             s_frame (PROTO_HELLO, NULL, NULL, NULL), why),
                      FEDQ_EDENIED);
    assert_non_null (strstr (why, "not authorized"));
    assert_int_equal (s_may (keys, NULL,
                             s_frame (PROTO_PING, NULL, NULL, NULL), why),
                      FEDQ_EDENIED);

    //  Fingerprints: stable for the same file, 0 for unknown, different
    //  once the rights change; a copy decides the same.
    uint64_t fp = security_keys_fingerprint (keys, "sydney");
    assert_true (fp != 0);
    assert_int_equal (security_keys_fingerprint (keys, "nobody"), 0);
    security_keys_t *copy = security_keys_copy (keys);
    assert_int_equal (security_keys_size (copy), 5);
    assert_true (security_keys_fingerprint (copy, "sydney") == fp);
    assert_int_equal (s_may (copy, "sydney",
                             s_frame (PROTO_LINK_HELLO, "outbox", NULL,
                                      "sydney"),
                             why),
                      FEDQ_EDENIED);
    security_keys_destroy (&copy);
    //  (zcert_set_meta keeps a name's first value: a new cert.)
    zcert_t *syd2 = zcert_new_from (zcert_public_key (syd),
                                    zcert_secret_key (syd));
    zcert_set_meta (syd2, "role", "peer");
    zcert_set_meta (syd2, "links", "outbox");
    snprintf (path, sizeof path, "%s/sydney.pub", t.auth);
    assert_int_equal (zcert_save_public (syd2, path), 0);
    zcert_destroy (&syd2);
    security_keys_t *again = security_keys_load (t.auth);
    assert_true (security_keys_fingerprint (again, "sydney") != fp);
    assert_true (security_keys_fingerprint (again, "alice")
                 == security_keys_fingerprint (keys, "alice"));
    security_keys_destroy (&again);
    security_keys_destroy (&keys);
    assert_null (keys);

    //  A folder that cannot be read.
    assert_null (security_keys_load ("/nonexistent/fedq/keys"));

    zcert_t *certs[] = {alice, syd, any, none, alias, norole, weird, leaked};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
        zcert_destroy (&certs[i]);
    s_tmp_remove (&t);
}

//  --- the ZAP handler in a real context ------------------------------------

//  A DEALER with client's keys to endpoint, sending one frame.
static void *
s_dealer (void *ctx, const char *endpoint, zcert_t *client, zcert_t *server)
{
    void *sock = zmq_socket (ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (sock, ZMQ_CURVE_SERVERKEY, zcert_public_key (server), 32);
    zmq_setsockopt (sock, ZMQ_CURVE_PUBLICKEY, zcert_public_key (client), 32);
    zmq_setsockopt (sock, ZMQ_CURVE_SECRETKEY, zcert_secret_key (client), 32);
    assert_int_equal (zmq_connect (sock, endpoint), 0);
    zmq_send (sock, "hello", 5, 0);
    return sock;
}

//  Receive [routing id, "hello"] on router within ms; the User-Id of the
//  frame copied to user (or "" when nothing came).
static bool
s_router_recv (void *router, int ms, char *user, size_t size)
{
    user[0] = 0;
    zmq_pollitem_t item = {router, 0, ZMQ_POLLIN, 0};
    if (zmq_poll (&item, 1, ms) <= 0)
        return false;
    zmq_msg_t id, body;
    zmq_msg_init (&id);
    zmq_msg_init (&body);
    assert_true (zmq_msg_recv (&id, router, 0) >= 0);
    assert_true (zmq_msg_recv (&body, router, 0) >= 0);
    const char *u = zmq_msg_gets (&body, "User-Id");
    snprintf (user, size, "%s", u ? u : "");
    zmq_msg_close (&id);
    zmq_msg_close (&body);
    return true;
}

static void
test_zap_handler (void **state)
{
    (void) state;
    s_tmp_t t;
    s_tmp_make (&t);
    zcert_t *node = s_keypair (t.dir, NULL, "node", "role", "peer", NULL);
    zcert_t *alice = s_keypair (t.dir, t.auth, "alice", "role", "client",
                                NULL);
    zcert_t *mallory = s_keypair (t.dir, NULL, "mallory", "role", "client",
                                  NULL);
    char key_path[256];
    snprintf (key_path, sizeof key_path, "%s/node.key", t.dir);
    cfg_security_t cfg = {.secret_key = key_path, .authorized_keys = t.auth};

    void *ctx = zmq_ctx_new ();
    security_t *sec = security_new (ctx, &cfg);
    assert_non_null (sec);
    assert_int_equal (security_keys_size (security_keys (sec)), 1);
    //  A second handler in the same context cannot bind.
    assert_null (security_new (ctx, &cfg));

    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt (router, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal (security_server (sec, router), FEDQ_OK);
    assert_int_equal (zmq_bind (router, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t len = sizeof endpoint;
    zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &len);

    //  Authorized: the frame arrives, named by the key's NAME.
    char user[256];
    void *a = s_dealer (ctx, endpoint, alice, node);
    assert_true (s_router_recv (router, 5000, user, sizeof user));
    assert_string_equal (user, "alice");
    zmq_close (a);

    //  Unknown key: nothing arrives, the refusal is counted.
    void *m = s_dealer (ctx, endpoint, mallory, node);
    assert_false (s_router_recv (router, 500, user, sizeof user));
    for (int i = 0; i < 50 && !security_handshakes_refused (sec); i++)
        usleep (20000);
    assert_true (security_handshakes_refused (sec) >= 1);
    zmq_close (m);

    //  Wrong server key: the handshake fails before ZAP.
    void *w = s_dealer (ctx, endpoint, alice, mallory);
    assert_false (s_router_recv (router, 500, user, sizeof user));
    zmq_close (w);

    //  Revoke alice, allow mallory: a reload swaps who gets in.
    char path[256];
    snprintf (path, sizeof path, "%s/alice.pub", t.auth);
    assert_int_equal (unlink (path), 0);
    snprintf (path, sizeof path, "%s/mallory.pub", t.auth);
    assert_int_equal (zcert_save_public (mallory, path), 0);
    assert_int_equal (security_reload (sec, &cfg), FEDQ_OK);
    assert_int_equal (security_keys_fingerprint (security_keys (sec),
                                                 "alice"),
                      0);
    a = s_dealer (ctx, endpoint, alice, node);
    assert_false (s_router_recv (router, 500, user, sizeof user));
    zmq_close (a);
    m = s_dealer (ctx, endpoint, mallory, node);
    assert_true (s_router_recv (router, 5000, user, sizeof user));
    assert_string_equal (user, "mallory");
    zmq_close (m);

    //  A reload from a folder that is gone keeps the running set.
    cfg_security_t gone = {.secret_key = key_path,
                           .authorized_keys = "/nonexistent/fedq"};
    assert_int_equal (security_reload (sec, &gone), FEDQ_EIO);
    assert_int_equal (security_keys_size (security_keys (sec)), 1);

    //  Links: a CURVE client with this node's keys reaches the router.
    void *link = zmq_socket (ctx, ZMQ_DEALER);
    zmq_setsockopt (link, ZMQ_LINGER, &zero, sizeof zero);
    char why[512];
    snprintf (path, sizeof path, "%s/node.pub", t.dir);
    assert_int_equal (zcert_save_public (node, path), 0);
    why[0] = 0;
    fedq_rc_t rc = security_client (link, path, why, sizeof why);
    if (rc)
        print_error ("security_client: %s\n", why);
    assert_int_equal (rc, FEDQ_OK);
    zmq_close (link);

    zmq_close (router);
    security_destroy (&sec);
    assert_null (sec);
    //  Without a node key pair a link cannot be a CURVE client.
    link = zmq_socket (ctx, ZMQ_DEALER);
    assert_int_equal (security_client (link, path, why, sizeof why),
                      FEDQ_EINVAL);
    assert_non_null (strstr (why, "no key pair"));
    zmq_close (link);
    zmq_ctx_term (ctx);

    zcert_destroy (&node);
    zcert_destroy (&alice);
    zcert_destroy (&mallory);
    s_tmp_remove (&t);
}

//  --- the node's own key file ------------------------------------------

static void
test_own_key_checks (void **state)
{
    (void) state;
    s_tmp_t t;
    s_tmp_make (&t);
    zcert_t *node = s_keypair (t.dir, t.dir, "node", "role", "peer", NULL);
    zcert_t *other = s_keypair (t.dir, NULL, "other", NULL);
    void *ctx = zmq_ctx_new ();
    char path[256];

    //  The public half where the secret belongs.
    snprintf (path, sizeof path, "%s/node.pub", t.dir);
    cfg_security_t cfg = {.secret_key = path, .authorized_keys = t.auth};
    assert_null (security_new (ctx, &cfg));
    //  Not a key file at all, and a missing one.
    snprintf (path, sizeof path, "%s/junk.key", t.dir);
    FILE *f = fopen (path, "w");
    fputs ("secret\n", f);
    fclose (f);
    assert_null (security_new (ctx, &cfg));
    snprintf (path, sizeof path, "%s/none.key", t.dir);
    assert_null (security_new (ctx, &cfg));
    //  A public key that does not belong to the secret key.
    zcert_t *mixed = zcert_new_from (zcert_public_key (other),
                                     zcert_secret_key (node));
    snprintf (path, sizeof path, "%s/mixed.key", t.dir);
    assert_int_equal (zcert_save_secret (mixed, path), 0);
    assert_null (security_new (ctx, &cfg));
    //  authorized_keys that is not a folder.
    snprintf (path, sizeof path, "%s/node.key", t.dir);
    cfg.authorized_keys = path;
    assert_null (security_new (ctx, &cfg));
    //  The real thing.
    cfg.authorized_keys = t.auth;
    security_t *sec = security_new (ctx, &cfg);
    assert_non_null (sec);
    security_destroy (&sec);

    //  Server key files for links.
    uint8_t key[32];
    char why[512];
    snprintf (path, sizeof path, "%s/node.pub", t.dir);
    assert_int_equal (security_load_public (path, key, why, sizeof why),
                      FEDQ_OK);
    assert_memory_equal (key, zcert_public_key (node), 32);
    assert_int_equal (security_load_public ("/nonexistent.pub", key, why,
                                            sizeof why),
                      FEDQ_EINVAL);
    assert_non_null (strstr (why, "/nonexistent.pub"));
    snprintf (path, sizeof path, "%s/junk.key", t.dir);
    assert_int_equal (security_load_public (path, key, why, sizeof why),
                      FEDQ_EINVAL);

    zmq_ctx_term (ctx);
    zcert_destroy (&mixed);
    zcert_destroy (&node);
    zcert_destroy (&other);
    s_tmp_remove (&t);
}

//  --- digests ------------------------------------------------------------

static void
test_sha256 (void **state)
{
    (void) state;
    char hex[SECURITY_SHA256_HEX];
    security_sha256_hex ("abc", 3, hex);
    assert_string_equal (hex, "ba7816bf8f01cfea414140de5dae2223"
                              "b00361a396177a9cb410ff61f20015ad");
    security_sha256_hex ("", 0, hex);
    assert_string_equal (hex, "e3b0c44298fc1c149afbf4c8996fb924"
                              "27ae41e4649b934ca495991b7852b855");
    security_sha256_hex ("abc", 3, hex);
    assert_true (security_sha256_check ("abc", 3, fedq_str_of (hex)));
    assert_true (security_sha256_check (
      "abc", 3, fedq_str_of ("BA7816BF8F01CFEA414140DE5DAE2223"
                             "B00361A396177A9CB410FF61F20015AD")));
    assert_false (security_sha256_check ("abd", 3, fedq_str_of (hex)));
    //  One digit off, too short, too long, not hex, absent.
    hex[63] = hex[63] == '0' ? '1' : '0';
    assert_false (security_sha256_check ("abc", 3, fedq_str_of (hex)));
    assert_false (security_sha256_check ("abc", 3, fedq_str_of ("ba78")));
    fedq_str_t long_one = {"ba7816bf8f01cfea414140de5dae2223"
                           "b00361a396177a9cb410ff61f20015ad00",
                           66};
    assert_false (security_sha256_check ("abc", 3, long_one));
    assert_false (security_sha256_check (
      "abc", 3, fedq_str_of ("zz7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad")));
    fedq_str_t absent = {NULL, 0};
    assert_false (security_sha256_check ("abc", 3, absent));
}

//  The digest rides in the LINK_MSG header as `sha256` (docs/protocol.md).
static void
test_digest_on_the_wire (void **state)
{
    (void) state;
    char hex[SECURITY_SHA256_HEX];
    security_sha256_hex ("body", 4, hex);
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = PROTO_LINK_MSG,
                       .present = PF_LINK | PF_EPOCH | PF_SEQ | PF_DIGEST,
                       .link = fedq_str_of ("l"),
                       .epoch = 1,
                       .seq = 2,
                       .digest = fedq_str_of (hex)};
    fedq_buf_t buf = {0};
    proto_frame_encode (&f, &buf);
    proto_frame_t g;
    const char *error = NULL;
    assert_int_equal (proto_frame_decode (buf.data, buf.size, &g, &error),
                      FEDQ_OK);
    assert_true (g.present & PF_DIGEST);
    assert_true (security_sha256_check ("body", 4, g.digest));
    fedq_buf_free (&buf);

    //  Longer than 64 bytes is malformed.
    char big[80];
    memset (big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    f.digest = fedq_str_of (big);
    proto_frame_encode (&f, &buf);
    assert_int_equal (proto_frame_decode (buf.data, buf.size, &g, &error),
                      FEDQ_EPROTO);
    fedq_buf_free (&buf);
}

int
main (void)
{
    setenv ("ZSYS_SIGHANDLER", "false", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_keys_load_and_decide),
        cmocka_unit_test (test_zap_handler),
        cmocka_unit_test (test_own_key_checks),
        cmocka_unit_test (test_sha256),
        cmocka_unit_test (test_digest_on_the_wire),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
