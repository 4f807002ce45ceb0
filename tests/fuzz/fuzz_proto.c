//  tests/fuzz/fuzz_proto.c — libFuzzer target for the wire protocol
//  decoders (proto/proto.h). Each input is decoded both as a command
//  header and as a message envelope. Whatever decodes must re-encode to
//  bytes that decode to the same values, and re-encode to the same bytes
//  again (the encoder's output is canonical); whatever does not decode
//  must say why. Any other outcome aborts.
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
    LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define S_CHECK(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf (stderr, "fuzz_proto: %s:%d: check failed: %s\n",          \
                     __FILE__, __LINE__, #cond);                               \
            abort ();                                                          \
        }                                                                      \
    } while (0)

static bool
s_str_same (fedq_str_t a, fedq_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp (a.ptr, b.ptr, a.len) == 0);
}

static void
s_check_frames (const proto_frame_t *a, const proto_frame_t *b)
{
    S_CHECK (a->version == b->version && a->cmd == b->cmd);
    S_CHECK (a->present == b->present && a->flags == b->flags);
    S_CHECK (a->rid == b->rid && a->seq == b->seq && a->upto == b->upto);
    S_CHECK (a->dtag == b->dtag && a->epoch == b->epoch);
    S_CHECK (a->count == b->count && a->code == b->code);
    S_CHECK (a->prefetch == b->prefetch);
    S_CHECK (a->heartbeat_ms == b->heartbeat_ms);
    S_CHECK (s_str_same (a->name, b->name) && s_str_same (a->type, b->type));
    S_CHECK (s_str_same (a->exchange, b->exchange));
    S_CHECK (s_str_same (a->queue, b->queue) && s_str_same (a->key, b->key));
    S_CHECK (s_str_same (a->tag, b->tag) && s_str_same (a->text, b->text));
    S_CHECK (s_str_same (a->link, b->link) && s_str_same (a->node, b->node));
    S_CHECK (s_str_same (a->json, b->json));
    const proto_qopts_t *qa = &a->qopts, *qb = &b->qopts;
    S_CHECK (qa->durable == qb->durable && qa->auto_delete == qb->auto_delete);
    S_CHECK (qa->single_active_consumer == qb->single_active_consumer);
    S_CHECK (qa->max_priority == qb->max_priority);
    S_CHECK (qa->overflow == qb->overflow);
    S_CHECK (qa->max_length == qb->max_length);
    S_CHECK (qa->max_bytes == qb->max_bytes);
    S_CHECK (qa->message_ttl_ms == qb->message_ttl_ms);
    S_CHECK (qa->dedup_window_ms == qb->dedup_window_ms);
    S_CHECK (s_str_same (qa->dead_letter_exchange, qb->dead_letter_exchange));
    S_CHECK (s_str_same (qa->dead_letter_routing_key,
                         qb->dead_letter_routing_key));
}

static void
s_check_msgs (const proto_msg_t *a, const proto_msg_t *b)
{
    S_CHECK (s_str_same (a->origin, b->origin) && a->seq == b->seq);
    S_CHECK (s_str_same (a->message_id, b->message_id));
    S_CHECK (s_str_same (a->exchange, b->exchange));
    S_CHECK (s_str_same (a->routing_key, b->routing_key));
    S_CHECK (a->published_at == b->published_at && a->ttl_ms == b->ttl_ms);
    S_CHECK (a->priority == b->priority && a->priority <= 9);
    S_CHECK (a->redelivered == b->redelivered);
    S_CHECK (a->nheaders == b->nheaders && a->nheaders <= PROTO_MAX_HEADERS);
    for (uint32_t i = 0; i < a->nheaders; i++) {
        S_CHECK (s_str_same (a->headers[i].key, b->headers[i].key));
        S_CHECK (s_str_same (a->headers[i].value, b->headers[i].value));
    }
    S_CHECK (a->npath == b->npath && a->npath <= PROTO_MAX_PATH);
    for (uint32_t i = 0; i < a->npath; i++)
        S_CHECK (s_str_same (a->path[i], b->path[i]));
}

static void
s_fuzz_frame (const uint8_t *data, size_t size)
{
    proto_frame_t a, b;
    const char *error = NULL;
    fedq_rc_t rc = proto_frame_decode (data, size, &a, &error);
    if (rc != FEDQ_OK) {
        S_CHECK (rc == FEDQ_EPROTO && error != NULL);
        return;
    }
    S_CHECK (error == NULL && a.version == PROTO_VERSION);
    (void) proto_frame_check (&a, &error);
    fedq_buf_t one = {0}, two = {0};
    proto_frame_encode (&a, &one);
    //  Re-encoding may add NACK's implicit requeue (a few bytes): only a
    //  header already at the size cap may then no longer fit.
    rc = proto_frame_decode (one.data, one.size, &b, &error);
    if (rc == FEDQ_OK) {
        s_check_frames (&a, &b);
        proto_frame_encode (&b, &two);
        S_CHECK (one.size == two.size);
        S_CHECK (memcmp (one.data, two.data, one.size) == 0);
    }
    else
        S_CHECK (one.size > PROTO_MAX_FRAME);
    fedq_buf_free (&one);
    fedq_buf_free (&two);
}

static void
s_fuzz_msg (const uint8_t *data, size_t size)
{
    static proto_msg_t a, b;
    const char *error = NULL;
    fedq_rc_t rc = proto_msg_decode (data, size, &a, &error);
    if (rc != FEDQ_OK) {
        S_CHECK (rc == FEDQ_EPROTO && error != NULL);
        return;
    }
    S_CHECK (error == NULL);
    fedq_buf_t one = {0}, two = {0};
    proto_msg_encode (&a, &one);
    //  The encoder drops empty strings and zeros, and uses the shortest
    //  encodings: never longer than what was decoded.
    S_CHECK (one.size <= size);
    S_CHECK (proto_msg_decode (one.data, one.size, &b, &error) == FEDQ_OK);
    s_check_msgs (&a, &b);
    proto_msg_encode (&b, &two);
    S_CHECK (one.size == two.size);
    S_CHECK (memcmp (one.data, two.data, one.size) == 0);
    fedq_buf_free (&one);
    fedq_buf_free (&two);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_fuzz_frame (data, size);
    s_fuzz_msg (data, size);
    return 0;
}
