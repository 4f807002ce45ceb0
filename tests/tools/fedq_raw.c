//  tests/tools/fedq_raw.c — send raw ZeroMQ frames to a node and print what
//  comes back. The hostile-input tests (tests/integration/
//  test_node_hostile.py) use it to throw malformed frames at a fedq-node,
//  and the semantics tests to hold deliveries unacked (a consumer with a
//  prefetch that never settles).
//
//      fedq_raw [options] ENDPOINT PART [PART...] [+ PART [PART...]]...
//
//  Each PART is a file whose bytes are one ZeroMQ message part; "+" ends a
//  multipart message and starts the next. Replies are printed one per
//  line, decoded with the protocol's own decoder:
//
//      reply 3: parts=1 cmd=4 ERROR code=-2 EPROTO rid=7 text="..."
//      reply 4: parts=3 cmd=17 DELIVER dtag=1 tag="c1" rd=0 body="message 1"
//      reply 5: parts=1 undecodable (why) hex=8a...
//
//  and a last line "summary: sent=N replies=N errors=N undecodable=N
//  pongs=N connections=N". Exit 0 once the replies are read (whatever
//  they say), 1 with -x N when fewer than N arrived, 2 on a usage error.
#define _GNU_SOURCE
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include <zmq.h>

#define S_MAX_PARTS 256         //  parts per message
#define S_FRESH_BATCH 64        //  --fresh: connections open at once

static const char *s_usage =
  "usage: fedq_raw [options] ENDPOINT PART [PART...] [+ PART...]...\n"
  "Send each file as one ZeroMQ message part (\"+\" starts the next\n"
  "multipart message) from a DEALER socket and print the replies.\n"
  "  -n COUNT         send the whole list COUNT times (default 1)\n"
  "  -t MS            wait for replies until MS pass without one\n"
  "                   (default 1000)\n"
  "  -x N             stop waiting once N replies arrived; exit 1 if fewer\n"
  "  --fresh          a new connection for every message\n"
  "  --settle HOW     answer each DELIVER: ack, nack, reject or hold\n"
  "                   (default hold: never settle)\n"
  "  --hold           after sending, print replies until stdin closes,\n"
  "                   then say BYE\n"
  "  --ping MS        while holding, send PING every MS (keeps the\n"
  "                   session alive; PONGs are counted, not printed)\n"
  "  -q               print the summary line only\n"
  "  --key FILE       CURVE: our NAME.key (from fedq keygen); needs\n"
  "  --server-key FILE  the node's NAME.pub\n";

typedef struct {
    size_t nparts;
    uint8_t *data[S_MAX_PARTS];
    size_t size[S_MAX_PARTS];
} s_msg_t;

typedef enum { SETTLE_HOLD, SETTLE_ACK, SETTLE_NACK, SETTLE_REJECT } s_how_t;

typedef struct {
    const char *endpoint;
    s_msg_t *msgs;
    size_t nmsgs;
    uint64_t count;             //  -n
    int idle_ms;                //  -t
    uint64_t expect;            //  -x, 0 = none
    bool fresh;
    bool hold;
    bool quiet;
    int ping_ms;
    bool curve;                 //  --key and --server-key given
    uint8_t our_public[32], our_secret[32], server_public[32];
    s_how_t settle;
    //  Results
    uint64_t sent, replies, errors, undecodable, pongs, connections;
} s_run_t;

static uint8_t *
s_read_file (const char *path, size_t *size)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "fedq_raw: cannot open %s: %s\n", path,
                 strerror (errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc (cap);
    size_t got;
    while (buf && (got = fread (buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            uint8_t *grown = realloc (buf, cap);
            if (!grown) {
                free (buf);
                buf = NULL;
            }
            buf = grown;
        }
    }
    fclose (f);
    if (!buf)
        fprintf (stderr, "fedq_raw: %s: out of memory\n", path);
    *size = n;
    return buf;
}

static void
s_print_str (const char *label, const uint8_t *p, size_t n, size_t max)
{
    printf (" %s=\"", label);
    for (size_t i = 0; i < n && i < max; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\')
            printf ("\\%c", c);
        else if (c >= 32 && c < 127)
            putchar (c);
        else
            printf ("\\x%02x", c);
    }
    printf ("%s\"", n > max ? "..." : "");
}

static void
s_send_frame (void *sock, const proto_frame_t *f)
{
    fedq_buf_t buf = {0};
    proto_frame_encode (f, &buf);
    zmq_send (sock, buf.data, buf.size, 0);
    fedq_buf_free (&buf);
}

//  Print one reply (parts[0..n)) and settle it when asked.
static void
s_reply (s_run_t *run, void *sock, zmq_msg_t *parts, size_t n)
{
    proto_frame_t f;
    const char *error = NULL;
    const uint8_t *h = zmq_msg_data (&parts[0]);
    size_t hlen = zmq_msg_size (&parts[0]);
    if (proto_frame_decode (h, hlen, &f, &error) != FEDQ_OK) {
        run->replies++;
        run->undecodable++;
        if (!run->quiet) {
            printf ("reply %" PRIu64 ": parts=%zu undecodable (%s) hex=",
                    run->replies, n, error ? error : "?");
            for (size_t i = 0; i < hlen && i < 32; i++)
                printf ("%02x", h[i]);
            printf ("\n");
        }
        return;
    }
    if (f.cmd == PROTO_PONG) {
        run->pongs++;
        return;
    }
    run->replies++;
    if (f.cmd == PROTO_ERROR)
        run->errors++;
    if (!run->quiet) {
        printf ("reply %" PRIu64 ": parts=%zu cmd=%u %s", run->replies, n,
                f.cmd, proto_cmd_name ((int) f.cmd));
        if (f.present & PF_CODE)
            printf (" code=%d %s", f.code, fedq_rc_name ((fedq_rc_t) f.code));
        if (f.present & PF_RID)
            printf (" rid=%" PRIu64, f.rid);
        if (f.present & PF_SEQ)
            printf (" seq=%" PRIu64, f.seq);
        if (f.present & PF_UPTO)
            printf (" upto=%" PRIu64, f.upto);
        if (f.present & PF_DTAG)
            printf (" dtag=%" PRIu64, f.dtag);
        if (f.present & PF_COUNT)
            printf (" count=%" PRIu64, f.count);
        if (f.present & PF_TAG)
            s_print_str ("tag", (const uint8_t *) f.tag.ptr, f.tag.len, 64);
        if (f.present & PF_NODE)
            s_print_str ("node", (const uint8_t *) f.node.ptr, f.node.len,
                         64);
        if (f.present & PF_TEXT)
            s_print_str ("text", (const uint8_t *) f.text.ptr, f.text.len,
                         400);
        if (n == 3) {
            proto_msg_t *m = calloc (1, sizeof *m);
            if (m
                && proto_msg_decode (zmq_msg_data (&parts[1]),
                                     zmq_msg_size (&parts[1]), m, &error)
                     == FEDQ_OK) {
                printf (" rd=%d seq_at_origin=%" PRIu64, m->redelivered ? 1 : 0,
                        m->seq);
                if (m->message_id.len)
                    s_print_str ("mid", (const uint8_t *) m->message_id.ptr,
                                 m->message_id.len, 64);
            }
            free (m);
            s_print_str ("body", zmq_msg_data (&parts[2]),
                         zmq_msg_size (&parts[2]), 64);
        }
        printf ("\n");
        fflush (stdout);
    }
    if (f.cmd == PROTO_DELIVER && (f.present & PF_DTAG)
        && run->settle != SETTLE_HOLD) {
        proto_frame_t s = {.version = PROTO_VERSION,
                           .present = PF_DTAG,
                           .dtag = f.dtag};
        s.cmd = run->settle == SETTLE_ACK    ? PROTO_ACK
                : run->settle == SETTLE_NACK ? PROTO_NACK
                                             : PROTO_REJECT;
        if (run->settle == SETTLE_NACK)
            s.flags = PFL_REQUEUE;
        s_send_frame (sock, &s);
    }
}

//  Read every reply waiting on sock (wait up to ms for the first one);
//  the number read.
static size_t
s_drain (s_run_t *run, void *sock, int ms)
{
    size_t got = 0;
    while (true) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, got ? 0 : ms) <= 0)
            return got;
        zmq_msg_t parts[S_MAX_PARTS];
        size_t n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t scratch, *part = n < S_MAX_PARTS ? &parts[n] : &scratch;
            zmq_msg_init (part);
            if (zmq_msg_recv (part, sock, 0) < 0) {
                zmq_msg_close (part);
                more = false;
                break;
            }
            more = zmq_msg_more (part);
            if (n < S_MAX_PARTS)
                n++;
            else
                zmq_msg_close (part);
        }
        if (n) {
            s_reply (run, sock, parts, n);
            got++;
        }
        for (size_t i = 0; i < n; i++)
            zmq_msg_close (&parts[i]);
    }
}

//  Load a czmq certificate's public key (and secret key, when secret is
//  not NULL); false (said on stderr) when the file has none.
static bool
s_load_key (const char *path, uint8_t *public_key, uint8_t *secret_key)
{
    zconfig_t *root = zconfig_load (path);
    const char *pub = root ? zconfig_get (root, "/curve/public-key", "") : "";
    const char *sec = root ? zconfig_get (root, "/curve/secret-key", "") : "";
    bool ok = strlen (pub) == 40 && zmq_z85_decode (public_key, pub)
              && (!secret_key
                  || (strlen (sec) == 40 && zmq_z85_decode (secret_key, sec)));
    if (!ok)
        fprintf (stderr, "fedq_raw: %s: no CURVE %s key\n", path,
                 secret_key ? "secret" : "public");
    zconfig_destroy (&root);
    return ok;
}

static void *
s_connect (s_run_t *run, void *ctx)
{
    void *sock = zmq_socket (ctx, ZMQ_DEALER);
    int zero = 0, hwm = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (run->curve) {
        zmq_setsockopt (sock, ZMQ_CURVE_SERVERKEY, run->server_public, 32);
        zmq_setsockopt (sock, ZMQ_CURVE_PUBLICKEY, run->our_public, 32);
        zmq_setsockopt (sock, ZMQ_CURVE_SECRETKEY, run->our_secret, 32);
    }
    if (zmq_connect (sock, run->endpoint) != 0) {
        fprintf (stderr, "fedq_raw: cannot connect to %s: %s\n",
                 run->endpoint, zmq_strerror (errno));
        zmq_close (sock);
        return NULL;
    }
    run->connections++;
    return sock;
}

static void
s_send_msg (s_run_t *run, void *sock, const s_msg_t *m)
{
    for (size_t p = 0; p < m->nparts; p++)
        zmq_send (sock, m->data[p], m->size[p],
                  p + 1 < m->nparts ? ZMQ_SNDMORE : 0);
    run->sent++;
}

static bool
s_done (const s_run_t *run)
{
    return run->expect && run->replies >= run->expect;
}

//  Wait for replies on socks until idle_ms pass without one or -x is met.
static void
s_collect (s_run_t *run, void **socks, size_t n)
{
    zmq_pollitem_t items[S_FRESH_BATCH];
    while (!s_done (run)) {
        for (size_t i = 0; i < n; i++)
            items[i] = (zmq_pollitem_t) {socks[i], 0, ZMQ_POLLIN, 0};
        if (zmq_poll (items, (int) n, run->idle_ms) <= 0)
            return;
        for (size_t i = 0; i < n; i++)
            if (items[i].revents & ZMQ_POLLIN)
                s_drain (run, socks[i], 0);
    }
}

static void
s_run_fresh (s_run_t *run, void *ctx)
{
    void *socks[S_FRESH_BATCH];
    size_t open = 0;
    for (uint64_t r = 0; r < run->count; r++)
        for (size_t i = 0; i < run->nmsgs; i++) {
            void *sock = s_connect (run, ctx);
            if (!sock)
                return;
            s_send_msg (run, sock, &run->msgs[i]);
            socks[open++] = sock;
            if (open == S_FRESH_BATCH) {
                s_collect (run, socks, open);
                while (open)
                    zmq_close (socks[--open]);
            }
        }
    s_collect (run, socks, open);
    while (open)
        zmq_close (socks[--open]);
}

static void
s_run_one (s_run_t *run, void *ctx)
{
    void *sock = s_connect (run, ctx);
    if (!sock)
        return;
    for (uint64_t r = 0; r < run->count; r++)
        for (size_t i = 0; i < run->nmsgs; i++) {
            s_send_msg (run, sock, &run->msgs[i]);
            s_drain (run, sock, 0);
        }
    if (run->hold) {
        //  Until stdin closes: print replies, settle, ping.
        int64_t next_ping = fedq_mono_ms () + run->ping_ms;
        while (true) {
            zmq_pollitem_t items[2] = {{sock, 0, ZMQ_POLLIN, 0},
                                       {NULL, 0, ZMQ_POLLIN, 0}};
            int timeout = run->ping_ms ? run->ping_ms : 1000;
            if (zmq_poll (items, 2, timeout) < 0 && errno != EINTR)
                break;
            if (items[0].revents & ZMQ_POLLIN)
                s_drain (run, sock, 0);
            if (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
                char buf[256];
                if (read (0, buf, sizeof buf) <= 0)
                    break;
            }
            if (run->ping_ms && fedq_mono_ms () >= next_ping) {
                proto_frame_t ping = {.version = PROTO_VERSION,
                                      .cmd = PROTO_PING};
                s_send_frame (sock, &ping);
                next_ping = fedq_mono_ms () + run->ping_ms;
            }
        }
        //  Leave like a client: the node requeues what we held.
        proto_frame_t bye = {.version = PROTO_VERSION, .cmd = PROTO_BYE};
        s_send_frame (sock, &bye);
        int linger = 1000;
        zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    }
    else
        s_collect (run, &sock, 1);
    zmq_close (sock);
}

int
main (int argc, char **argv)
{
    s_run_t run = {.count = 1, .idle_ms = 1000};
    //  At most one message per argument.
    s_msg_t *msgs = calloc ((size_t) argc, sizeof *msgs);
    if (!msgs)
        return 2;
    run.msgs = msgs;
    int rc = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (a, "-n") == 0 && v)
            run.count = strtoull (argv[++i], NULL, 10);
        else if (strcmp (a, "-t") == 0 && v)
            run.idle_ms = atoi (argv[++i]);
        else if (strcmp (a, "-x") == 0 && v)
            run.expect = strtoull (argv[++i], NULL, 10);
        else if (strcmp (a, "--ping") == 0 && v)
            run.ping_ms = atoi (argv[++i]);
        else if (strcmp (a, "--settle") == 0 && v) {
            i++;
            run.settle = strcmp (v, "ack") == 0      ? SETTLE_ACK
                         : strcmp (v, "nack") == 0   ? SETTLE_NACK
                         : strcmp (v, "reject") == 0 ? SETTLE_REJECT
                                                     : SETTLE_HOLD;
        }
        else if (strcmp (a, "--fresh") == 0)
            run.fresh = true;
        else if (strcmp (a, "--hold") == 0)
            run.hold = true;
        else if (strcmp (a, "-q") == 0)
            run.quiet = true;
        else if (strcmp (a, "--key") == 0 && v) {
            i++;
            if (!s_load_key (v, run.our_public, run.our_secret))
                return 2;
            run.curve = true;
        }
        else if (strcmp (a, "--server-key") == 0 && v) {
            i++;
            if (!s_load_key (v, run.server_public, NULL))
                return 2;
        }
        else {
            fputs (s_usage, stderr);
            return 2;
        }
    }
    if (i + 1 >= argc) {
        fputs (s_usage, stderr);
        return 2;
    }
    run.endpoint = argv[i++];
    for (; i < argc; i++) {
        if (strcmp (argv[i], "+") == 0) {
            if (msgs[run.nmsgs].nparts)
                run.nmsgs++;
            continue;
        }
        if (msgs[run.nmsgs].nparts >= S_MAX_PARTS) {
            fprintf (stderr, "fedq_raw: at most %d parts in a message\n",
                     S_MAX_PARTS);
            return 2;
        }
        s_msg_t *m = &msgs[run.nmsgs];
        m->data[m->nparts] = s_read_file (argv[i], &m->size[m->nparts]);
        if (!m->data[m->nparts])
            return 2;
        m->nparts++;
    }
    if (msgs[run.nmsgs].nparts)
        run.nmsgs++;
    if (run.nmsgs == 0) {
        fputs (s_usage, stderr);
        return 2;
    }
    void *ctx = zmq_ctx_new ();
    if (run.fresh)
        s_run_fresh (&run, ctx);
    else
        s_run_one (&run, ctx);
    printf ("summary: sent=%" PRIu64 " replies=%" PRIu64 " errors=%" PRIu64
            " undecodable=%" PRIu64 " pongs=%" PRIu64 " connections=%" PRIu64
            "\n",
            run.sent, run.replies, run.errors, run.undecodable, run.pongs,
            run.connections);
    fflush (stdout);
    if (run.expect && run.replies < run.expect)
        rc = 1;
    zmq_ctx_term (ctx);
    for (size_t m = 0; m < run.nmsgs; m++)
        for (size_t p = 0; p < msgs[m].nparts; p++)
            free (msgs[m].data[p]);
    free (msgs);
    return rc;
}
