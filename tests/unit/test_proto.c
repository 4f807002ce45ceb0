//  tests/unit/test_proto.c — the wire protocol codecs (proto/proto.h,
//  docs/protocol.md): round trips of every command and of the envelope,
//  and hostile input that must come back FEDQ_EPROTO without a crash.
//
//  `test_proto --write-corpus DIR` writes the libFuzzer seed corpus
//  (tests/fuzz/corpus/proto) from the same frames and exits.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto.h"

//  ---------------------------------------------------------------------
//  Helpers

//  A msgpack writer into a fedq_buf_t, for hand-built (hostile) input.
typedef struct {
    fedq_buf_t buf;
    msgpack_packer pk;
} mp_t;

static int
s_mp_write (void *data, const char *buf, size_t len)
{
    fedq_buf_append ((fedq_buf_t *) data, buf, len);
    return 0;
}

static void
s_mp_init (mp_t *m)
{
    memset (m, 0, sizeof *m);
    msgpack_packer_init (&m->pk, &m->buf, s_mp_write);
}

static void
s_mp_key (mp_t *m, const char *key)
{
    msgpack_pack_str_with_body (&m->pk, key, strlen (key));
}

static void
s_mp_raw (mp_t *m, const void *bytes, size_t size)
{
    fedq_buf_append (&m->buf, bytes, size);
}

//  Start a header map of n pairs with v and cmd (2 of the n).
static void
s_mp_header (mp_t *m, uint32_t n, uint32_t version, uint32_t cmd)
{
    msgpack_pack_map (&m->pk, n);
    s_mp_key (m, "v");
    msgpack_pack_uint32 (&m->pk, version);
    s_mp_key (m, "cmd");
    msgpack_pack_uint32 (&m->pk, cmd);
}

static fedq_rc_t
s_decode (const mp_t *m, proto_frame_t *frame, const char **error)
{
    return proto_frame_decode (m->buf.data, m->buf.size, frame, error);
}

//  A string of n copies of c, in static storage per slot.
static fedq_str_t
s_long (int slot, char c, size_t n)
{
    static char pool[4][70000];
    assert_true (n <= sizeof pool[0]);
    memset (pool[slot], c, n);
    fedq_str_t s = {pool[slot], (uint32_t) n};
    return s;
}

static void
s_assert_str_eq (fedq_str_t a, fedq_str_t b)
{
    assert_int_equal (a.len, b.len);
    if (a.len)
        assert_memory_equal (a.ptr, b.ptr, a.len);
}

static void
s_assert_frame_eq (const proto_frame_t *a, const proto_frame_t *b)
{
    assert_int_equal (a->version, b->version);
    assert_int_equal (a->cmd, b->cmd);
    assert_int_equal (a->present, b->present);
    assert_int_equal (a->flags, b->flags);
    assert_true (a->rid == b->rid);
    s_assert_str_eq (a->name, b->name);
    s_assert_str_eq (a->type, b->type);
    s_assert_str_eq (a->exchange, b->exchange);
    s_assert_str_eq (a->queue, b->queue);
    s_assert_str_eq (a->key, b->key);
    assert_true (a->seq == b->seq);
    assert_true (a->upto == b->upto);
    s_assert_str_eq (a->tag, b->tag);
    assert_true (a->dtag == b->dtag);
    assert_int_equal (a->prefetch, b->prefetch);
    assert_int_equal (a->code, b->code);
    s_assert_str_eq (a->text, b->text);
    s_assert_str_eq (a->link, b->link);
    assert_true (a->epoch == b->epoch);
    s_assert_str_eq (a->node, b->node);
    s_assert_str_eq (a->json, b->json);
    assert_true (a->count == b->count);
    assert_int_equal (a->heartbeat_ms, b->heartbeat_ms);
    const proto_qopts_t *qa = &a->qopts, *qb = &b->qopts;
    assert_int_equal (qa->durable, qb->durable);
    assert_int_equal (qa->auto_delete, qb->auto_delete);
    assert_int_equal (qa->single_active_consumer, qb->single_active_consumer);
    assert_int_equal (qa->max_priority, qb->max_priority);
    assert_int_equal (qa->overflow, qb->overflow);
    assert_true (qa->max_length == qb->max_length);
    assert_true (qa->max_bytes == qb->max_bytes);
    assert_true (qa->message_ttl_ms == qb->message_ttl_ms);
    assert_true (qa->dedup_window_ms == qb->dedup_window_ms);
    s_assert_str_eq (qa->dead_letter_exchange, qb->dead_letter_exchange);
    s_assert_str_eq (qa->dead_letter_routing_key, qb->dead_letter_routing_key);
}

static void
s_assert_msg_eq (const proto_msg_t *a, const proto_msg_t *b)
{
    s_assert_str_eq (a->origin, b->origin);
    assert_true (a->seq == b->seq);
    s_assert_str_eq (a->message_id, b->message_id);
    s_assert_str_eq (a->exchange, b->exchange);
    s_assert_str_eq (a->routing_key, b->routing_key);
    assert_true (a->published_at == b->published_at);
    assert_true (a->ttl_ms == b->ttl_ms);
    assert_int_equal (a->priority, b->priority);
    assert_int_equal (a->redelivered, b->redelivered);
    assert_int_equal (a->nheaders, b->nheaders);
    for (uint32_t i = 0; i < a->nheaders; i++) {
        s_assert_str_eq (a->headers[i].key, b->headers[i].key);
        s_assert_str_eq (a->headers[i].value, b->headers[i].value);
    }
    assert_int_equal (a->npath, b->npath);
    for (uint32_t i = 0; i < a->npath; i++)
        s_assert_str_eq (a->path[i], b->path[i]);
}

//  Every command this version defines.
static const int s_cmds[] = {
    PROTO_HELLO, PROTO_HELLO_OK, PROTO_OK, PROTO_ERROR,
    PROTO_DECLARE_QUEUE, PROTO_DELETE_QUEUE, PROTO_PURGE_QUEUE,
    PROTO_DECLARE_EXCHANGE, PROTO_DELETE_EXCHANGE, PROTO_BIND, PROTO_UNBIND,
    PROTO_PUBLISH, PROTO_CONFIRM, PROTO_RETURN, PROTO_CONSUME, PROTO_CANCEL,
    PROTO_DELIVER, PROTO_GET, PROTO_GET_EMPTY, PROTO_ACK, PROTO_NACK,
    PROTO_REJECT, PROTO_STATUS, PROTO_STATUS_OK, PROTO_PING, PROTO_PONG,
    PROTO_BYE, PROTO_LINK_HELLO, PROTO_LINK_WELCOME, PROTO_LINK_MSG,
    PROTO_LINK_CONFIRM, PROTO_LINK_REJECT, PROTO_LINK_SKIP,
    PROTO_FED_HELLO, PROTO_FED_SYNC, PROTO_FED_EVENT, PROTO_FED_ACK,
    PROTO_FED_RESYNC, PROTO_FED_KEEP,
    PROTO_FED_EVENTS, PROTO_FED_DIRECT,
};
#define S_NCMDS (sizeof s_cmds / sizeof s_cmds[0])

//  A frame with every field and flag set, at the edges of their ranges.
static void
s_full_frame (proto_frame_t *f, int cmd)
{
    memset (f, 0, sizeof *f);
    f->version = PROTO_VERSION;
    f->cmd = (uint32_t) cmd;
    f->present = PF_RID | PF_NAME | PF_TYPE | PF_EXCHANGE | PF_QUEUE | PF_KEY
                 | PF_SEQ | PF_UPTO | PF_TAG | PF_DTAG | PF_PREFETCH
                 | PF_CODE | PF_TEXT | PF_LINK | PF_EPOCH | PF_NODE | PF_JSON
                 | PF_COUNT | PF_QOPTS | PF_HEARTBEAT;
    f->flags = PFL_MULTIPLE | PFL_REQUEUE | PFL_NO_ACK | PFL_MANDATORY
               | PFL_IF_UNUSED | PFL_PASSIVE | PFL_BATCH | PFL_LISTED;
    f->rid = 0x1122334455667788ull;
    f->name = s_long (0, 'n', PROTO_MAX_NAME);
    f->type = fedq_str_of ("topic");
    f->exchange = fedq_str_of ("orders");
    f->queue = fedq_str_of ("outbox");
    f->key = fedq_str_of ("order.created.eu-west");
    f->seq = UINT64_MAX;
    f->upto = 1ull << 40;
    f->tag = fedq_str_of ("consumer-1");
    f->dtag = 300;
    f->prefetch = UINT32_MAX;
    f->code = FEDQ_ELOOP;
    f->text = fedq_str_of ("message already visited node sydney; refused");
    f->link = fedq_str_of ("outbox-to-melbourne");
    f->epoch = 7;
    f->node = fedq_str_of ("sydney");
    f->json = s_long (1, 'j', 300);
    f->count = 65536;
    f->heartbeat_ms = 2000;
    f->qopts.durable = true;
    f->qopts.auto_delete = true;
    f->qopts.single_active_consumer = true;
    f->qopts.max_priority = 9;
    f->qopts.overflow = PROTO_OVERFLOW_REJECT;
    f->qopts.max_length = 1000000;
    f->qopts.max_bytes = 1ull << 30;
    f->qopts.message_ttl_ms = 60000;
    f->qopts.dedup_window_ms = 5000;
    f->qopts.dead_letter_exchange = fedq_str_of ("dlx");
    f->qopts.dead_letter_routing_key = fedq_str_of ("dead.orders");
}

//  A frame with just the fields its command requires, as a node or client
//  would send it.
static void
s_min_frame (proto_frame_t *f, int cmd)
{
    proto_frame_t full;
    s_full_frame (&full, cmd);
    memset (f, 0, sizeof *f);
    f->version = PROTO_VERSION;
    f->cmd = (uint32_t) cmd;
    f->present = proto_cmd_required (cmd);
    f->rid = 41;
    f->name = fedq_str_of ("orders");
    f->type = full.type;
    f->exchange = full.exchange;
    f->queue = full.queue;
    f->key = full.key;
    f->seq = 12;
    f->upto = 12;
    f->tag = full.tag;
    f->dtag = 3;
    f->code = FEDQ_EUNROUTABLE;
    f->link = full.link;
    f->epoch = 2;
    f->node = full.node;
    f->json = fedq_str_of ("{\"node\":{\"id\":\"sydney\"}}");
    if (cmd == PROTO_NACK)
        f->flags = PFL_REQUEUE;
    //  What a decoder returns for absent fields: zero.
    proto_frame_t zero;
    memset (&zero, 0, sizeof zero);
    if (!(f->present & PF_RID))
        f->rid = 0;
    if (!(f->present & PF_NAME))
        f->name = zero.name;
    if (!(f->present & PF_TYPE))
        f->type = zero.type;
    if (!(f->present & PF_EXCHANGE))
        f->exchange = zero.exchange;
    if (!(f->present & PF_QUEUE))
        f->queue = zero.queue;
    if (!(f->present & PF_KEY))
        f->key = zero.key;
    if (!(f->present & PF_SEQ))
        f->seq = 0;
    if (!(f->present & PF_UPTO))
        f->upto = 0;
    if (!(f->present & PF_TAG))
        f->tag = zero.tag;
    if (!(f->present & PF_DTAG))
        f->dtag = 0;
    if (!(f->present & PF_CODE))
        f->code = 0;
    if (!(f->present & PF_LINK))
        f->link = zero.link;
    if (!(f->present & PF_EPOCH))
        f->epoch = 0;
    if (!(f->present & PF_NODE))
        f->node = zero.node;
    if (!(f->present & PF_JSON))
        f->json = zero.json;
}

static size_t s_n_hdr_full = PROTO_MAX_HEADERS;

//  An envelope with every field, PROTO_MAX_HEADERS headers and
//  PROTO_MAX_PATH path entries.
static void
s_full_msg (proto_msg_t *m)
{
    static char names[PROTO_MAX_HEADERS][2][24];
    static char nodes[PROTO_MAX_PATH][16];
    memset (m, 0, sizeof *m);
    m->origin = fedq_str_of ("sydney");
    m->seq = 1ull << 50;
    m->message_id = fedq_str_of ("order-2024-000017");
    m->exchange = fedq_str_of ("orders");
    m->routing_key = fedq_str_of ("order.created");
    m->published_at = 1700000000123;
    m->ttl_ms = 86400000;
    m->priority = 9;
    m->redelivered = true;
    m->nheaders = (uint32_t) s_n_hdr_full;
    for (uint32_t i = 0; i < m->nheaders; i++) {
        snprintf (names[i][0], sizeof names[i][0], "x-header-%u", i);
        snprintf (names[i][1], sizeof names[i][1], "value %u", i * 7919);
        m->headers[i].key = fedq_str_of (names[i][0]);
        m->headers[i].value = fedq_str_of (names[i][1]);
    }
    m->npath = PROTO_MAX_PATH;
    for (uint32_t i = 0; i < m->npath; i++) {
        snprintf (nodes[i], sizeof nodes[i], "site-%02u", i);
        m->path[i] = fedq_str_of (nodes[i]);
    }
}

static void
s_roundtrip_frame (const proto_frame_t *in)
{
    fedq_buf_t buf = {0};
    proto_frame_encode (in, &buf);
    proto_frame_t out;
    const char *error = "not set";
    assert_int_equal (proto_frame_decode (buf.data, buf.size, &out, &error),
                      FEDQ_OK);
    assert_null (error);
    s_assert_frame_eq (in, &out);
    fedq_buf_free (&buf);
}

//  Both decoders must refuse these bytes, cleanly.
static void
s_assert_both_refuse (const uint8_t *data, size_t size)
{
    proto_frame_t f;
    proto_msg_t m;
    const char *error = NULL;
    assert_int_equal (proto_frame_decode (data, size, &f, &error),
                      FEDQ_EPROTO);
    assert_non_null (error);
    error = NULL;
    assert_int_equal (proto_msg_decode (data, size, &m, &error), FEDQ_EPROTO);
    assert_non_null (error);
}

//  ---------------------------------------------------------------------
//  Round trips

static void
test_cmd_names (void **state)
{
    for (size_t i = 0; i < S_NCMDS; i++) {
        const char *name = proto_cmd_name (s_cmds[i]);
        assert_string_not_equal (name, "UNKNOWN");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal (name, proto_cmd_name (s_cmds[j]));
    }
    assert_string_equal (proto_cmd_name (PROTO_PUBLISH), "PUBLISH");
    assert_string_equal (proto_cmd_name (PROTO_LINK_CONFIRM), "LINK_CONFIRM");
    assert_string_equal (proto_cmd_name (0), "UNKNOWN");
    assert_string_equal (proto_cmd_name (-1), "UNKNOWN");
    assert_string_equal (proto_cmd_name (28), "UNKNOWN");
    assert_string_equal (proto_cmd_name (PROTO_CMD_MAX), "UNKNOWN");
    assert_string_equal (proto_cmd_name (100000), "UNKNOWN");
}

//  FED_EVENTS: events part and bodies part (docs/protocol.md §10.1)

static void
s_fed_three (fedq_buf_t *events, fedq_buf_t *bodies)
{
    static const uint8_t env[] = {0x81, 0xA1, 'o', 0xA1, 'a'};
    const char *text[] = {"first body", "", "third"};
    for (int i = 0; i < 3; i++) {
        proto_fed_event_t e = {.count = 10 + (uint64_t) i * 7,
                               .origin = fedq_str_of (i == 1 ? "b" : "a"),
                               .seq = UINT64_MAX - (uint64_t) i,
                               .env = env,
                               .env_len = sizeof env,
                               .body = (const uint8_t *) text[i],
                               .body_len = (uint32_t) strlen (text[i])};
        proto_fed_event_encode (&e, events, bodies);
    }
}

static void
test_fed_events_roundtrip (void **state)
{
    fedq_buf_t events = {0}, bodies = {0};
    s_fed_three (&events, &bodies);
    proto_fed_event_t out[4];
    const char *error = NULL;
    assert_int_equal (proto_fed_events_decode (events.data, events.size,
                                               bodies.data, bodies.size, 3,
                                               out, 4, &error),
                      FEDQ_OK);
    assert_int_equal (out[0].count, 10);
    assert_int_equal (out[2].count, 24);
    assert_true (fedq_str_eq (out[1].origin, "b"));
    assert_true (out[2].seq == UINT64_MAX - 2);
    assert_int_equal (out[0].env_len, 5);
    assert_memory_equal (out[0].body, "first body", 10);
    assert_int_equal (out[1].body_len, 0);
    assert_memory_equal (out[2].body, "third", 5);
    assert_ptr_equal (out[2].body, bodies.data + 10);
    fedq_buf_free (&events);
    fedq_buf_free (&bodies);
}

static void
test_fed_events_hostile (void **state)
{
    fedq_buf_t events = {0}, bodies = {0};
    s_fed_three (&events, &bodies);
    proto_fed_event_t out[4];
    const uint8_t *ev = events.data, *bo = bodies.data;
    size_t el = events.size, bl = bodies.size;
    const char *error = NULL;
    //  Counts that do not match the entries, or go past the room given.
    assert_int_equal (proto_fed_events_decode (ev, el, bo, bl, 2, out, 4,
                                               &error), FEDQ_EPROTO);
    assert_non_null (error);
    assert_int_equal (proto_fed_events_decode (ev, el, bo, bl, 4, out, 4,
                                               &error), FEDQ_EPROTO);
    assert_int_equal (proto_fed_events_decode (ev, el, bo, bl, 3, out, 2,
                                               &error), FEDQ_EPROTO);
    assert_int_equal (proto_fed_events_decode (ev, el, bo, bl, 0, out, 4,
                                               &error), FEDQ_EPROTO);
    assert_int_equal (proto_fed_events_decode (ev, el, bo, bl, UINT64_MAX,
                                               out, 4, &error), FEDQ_EPROTO);
    //  Bodies part too short or too long for the lengths declared.
    assert_int_equal (proto_fed_events_decode (ev, el, bo, bl - 1, 3, out, 4,
                                               &error), FEDQ_EPROTO);
    uint8_t more[64];
    memcpy (more, bo, bl);
    assert_int_equal (proto_fed_events_decode (ev, el, more, bl + 1, 3, out,
                                               4, &error), FEDQ_EPROTO);
    //  Every truncation of the events part fails cleanly.
    for (size_t cut = 0; cut < el; cut++)
        assert_int_equal (proto_fed_events_decode (ev, cut, bo, bl, 3, out, 4,
                                                   &error), FEDQ_EPROTO);
    //  Every single-byte change either decodes within bounds or fails.
    uint8_t *copy = malloc (el);
    for (size_t i = 0; i < el; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy (copy, ev, el);
            copy[i] ^= (uint8_t) (1u << bit);
            if (proto_fed_events_decode (copy, el, bo, bl, 3, out, 4, &error)
                == FEDQ_OK)
                for (int k = 0; k < 3; k++) {
                    assert_true (out[k].env >= copy
                                 && out[k].env + out[k].env_len <= copy + el);
                    assert_true (out[k].body >= bo
                                 && out[k].body + out[k].body_len <= bo + bl);
                }
        }
    free (copy);
    //  An entry that is not a 5-array, an empty origin, sequence 0.
    static const uint8_t four[] = {0x94, 0x01, 0xA1, 'a', 0x01, 0xC4, 0x01,
                                   0x80};
    assert_int_equal (proto_fed_events_decode (four, sizeof four, NULL, 0, 1,
                                               out, 4, &error), FEDQ_EPROTO);
    static const uint8_t no_origin[] = {0x95, 0x01, 0xA0, 0x01, 0xC4,
                                        0x01, 0x80, 0x00};
    assert_int_equal (proto_fed_events_decode (no_origin, sizeof no_origin,
                                               NULL, 0, 1, out, 4, &error),
                      FEDQ_EPROTO);
    static const uint8_t seq0[] = {0x95, 0x01, 0xA1, 'a', 0x00, 0xC4,
                                   0x01, 0x80, 0x00};
    assert_int_equal (proto_fed_events_decode (seq0, sizeof seq0, NULL, 0, 1,
                                               out, 4, &error), FEDQ_EPROTO);
    static const uint8_t good[] = {0x95, 0x01, 0xA1, 'a', 0x01, 0xC4,
                                   0x01, 0x80, 0x00};
    assert_int_equal (proto_fed_events_decode (good, sizeof good, NULL, 0, 1,
                                               out, 4, &error), FEDQ_OK);
    fedq_buf_free (&events);
    fedq_buf_free (&bodies);
}

static void
test_frame_roundtrip_all_fields (void **state)
{
    for (size_t i = 0; i < S_NCMDS; i++) {
        proto_frame_t f;
        s_full_frame (&f, s_cmds[i]);
        s_roundtrip_frame (&f);
        //  And with no flag at all (NACK then carries requeue: false).
        f.flags = 0;
        s_roundtrip_frame (&f);
    }
}

static void
test_frame_roundtrip_each_kind (void **state)
{
    for (size_t i = 0; i < S_NCMDS; i++) {
        proto_frame_t f;
        s_min_frame (&f, s_cmds[i]);
        const char *error = "not set";
        assert_int_equal (proto_frame_check (&f, &error), FEDQ_OK);
        assert_null (error);
        s_roundtrip_frame (&f);
    }
}

static void
test_frame_field_subsets (void **state)
{
    //  Each field alone, so no key depends on a neighbour to decode.
    proto_frame_t full;
    s_full_frame (&full, PROTO_PUBLISH);
    for (uint32_t bit = 1; bit <= PF_HEARTBEAT; bit <<= 1) {
        proto_frame_t f = full;
        f.present = bit;
        f.flags = 0;
        fedq_buf_t buf = {0};
        proto_frame_encode (&f, &buf);
        proto_frame_t out;
        assert_int_equal (proto_frame_decode (buf.data, buf.size, &out, NULL),
                          FEDQ_OK);
        assert_int_equal (out.present, bit);
        fedq_buf_free (&buf);
    }
    for (uint32_t bit = 1; bit <= PFL_LISTED; bit <<= 1) {
        proto_frame_t f = full;
        f.present = 0;
        f.flags = bit;
        fedq_buf_t buf = {0};
        proto_frame_encode (&f, &buf);
        proto_frame_t out;
        assert_int_equal (proto_frame_decode (buf.data, buf.size, &out, NULL),
                          FEDQ_OK);
        assert_int_equal (out.flags, bit);
        assert_int_equal (out.present, 0);
        fedq_buf_free (&buf);
    }
}

static bool
s_contains (const fedq_buf_t *buf, const char *needle)
{
    size_t n = strlen (needle);
    for (size_t i = 0; i + n <= buf->size; i++)
        if (memcmp (buf->data + i, needle, n) == 0)
            return true;
    return false;
}

static void
test_frame_writes_only_present (void **state)
{
    proto_frame_t f;
    memset (&f, 0, sizeof f);
    f.cmd = PROTO_PUBLISH;          //  version 0: the encoder writes 1
    f.present = PF_SEQ;
    f.seq = 5;
    f.rid = 99;                     //  not present: must not be written
    fedq_buf_t buf = {0};
    proto_frame_encode (&f, &buf);
    //  {"v":1,"cmd":12,"seq":5}
    static const uint8_t expect[] = {0x83, 0xA1, 'v', 0x01, 0xA3, 'c', 'm',
                                     'd', 0x0C, 0xA3, 's', 'e', 'q', 0x05};
    assert_int_equal (buf.size, sizeof expect);
    assert_memory_equal (buf.data, expect, sizeof expect);
    fedq_buf_free (&buf);

    //  NACK always states requeue, even when false; other flags only
    //  when set.
    memset (&f, 0, sizeof f);
    f.cmd = PROTO_NACK;
    f.present = PF_DTAG;
    f.dtag = 4;
    proto_frame_encode (&f, &buf);
    assert_true (s_contains (&buf, "requeue"));
    assert_false (s_contains (&buf, "multiple"));
    proto_frame_t out;
    assert_int_equal (proto_frame_decode (buf.data, buf.size, &out, NULL),
                      FEDQ_OK);
    assert_int_equal (out.flags, 0);
    fedq_buf_free (&buf);

    f.cmd = PROTO_ACK;
    proto_frame_encode (&f, &buf);
    assert_false (s_contains (&buf, "requeue"));
    fedq_buf_free (&buf);
}

static void
test_nack_requeue_default (void **state)
{
    mp_t m;
    s_mp_init (&m);
    s_mp_header (&m, 3, 1, PROTO_NACK);
    s_mp_key (&m, "dtag");
    msgpack_pack_uint64 (&m.pk, 8);
    proto_frame_t f;
    assert_int_equal (s_decode (&m, &f, NULL), FEDQ_OK);
    assert_true (f.flags & PFL_REQUEUE);
    fedq_buf_free (&m.buf);

    //  Explicit false wins; on another command, absence means false.
    s_mp_init (&m);
    s_mp_header (&m, 3, 1, PROTO_NACK);
    s_mp_key (&m, "requeue");
    msgpack_pack_false (&m.pk);
    assert_int_equal (s_decode (&m, &f, NULL), FEDQ_OK);
    assert_false (f.flags & PFL_REQUEUE);
    fedq_buf_free (&m.buf);

    s_mp_init (&m);
    s_mp_header (&m, 2, 1, PROTO_REJECT);
    assert_int_equal (s_decode (&m, &f, NULL), FEDQ_OK);
    assert_false (f.flags & PFL_REQUEUE);
    fedq_buf_free (&m.buf);
}

static void
test_msg_roundtrip (void **state)
{
    proto_msg_t in, out;
    s_full_msg (&in);
    fedq_buf_t buf = {0};
    proto_msg_encode (&in, &buf);
    const char *error = "not set";
    assert_int_equal (proto_msg_decode (buf.data, buf.size, &out, &error),
                      FEDQ_OK);
    assert_null (error);
    s_assert_msg_eq (&in, &out);
    fedq_buf_free (&buf);

    //  Negative timestamps (clock before 1970) survive too.
    in.published_at = -5;
    in.nheaders = 1;
    in.npath = 1;
    proto_msg_encode (&in, &buf);
    assert_int_equal (proto_msg_decode (buf.data, buf.size, &out, NULL),
                      FEDQ_OK);
    s_assert_msg_eq (&in, &out);
    fedq_buf_free (&buf);

    //  Decoding clears what a previous decode left in the struct.
    static const uint8_t empty[] = {0x80};
    assert_int_equal (proto_msg_decode (empty, 1, &out, NULL), FEDQ_OK);
    proto_msg_t zero;
    memset (&zero, 0, sizeof zero);
    s_assert_msg_eq (&zero, &out);
    assert_null (out.origin.ptr);
}

static void
test_msg_writes_only_nonzero (void **state)
{
    proto_msg_t m;
    memset (&m, 0, sizeof m);
    fedq_buf_t buf = {0};
    proto_msg_encode (&m, &buf);
    assert_int_equal (buf.size, 1);
    assert_int_equal (buf.data[0], 0x80);
    fedq_buf_free (&buf);

    m.seq = 5;
    m.exchange = fedq_str_of ("");     //  empty: the default exchange
    proto_msg_encode (&m, &buf);
    static const uint8_t expect[] = {0x81, 0xA1, 's', 0x05};
    assert_int_equal (buf.size, sizeof expect);
    assert_memory_equal (buf.data, expect, sizeof expect);
    fedq_buf_free (&buf);
}

static void
test_integer_encodings (void **state)
{
    //  The same rid in every msgpack integer encoding.
    static const uint8_t encodings[][10] = {
        {1, 0x2A},
        {2, 0xCC, 0x2A},
        {3, 0xCD, 0x00, 0x2A},
        {5, 0xCE, 0x00, 0x00, 0x00, 0x2A},
        {9, 0xCF, 0, 0, 0, 0, 0, 0, 0, 0x2A},
        {2, 0xD0, 0x2A},
        {3, 0xD1, 0x00, 0x2A},
        {5, 0xD2, 0x00, 0x00, 0x00, 0x2A},
        {9, 0xD3, 0, 0, 0, 0, 0, 0, 0, 0x2A},
    };
    for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++) {
        mp_t m;
        s_mp_init (&m);
        s_mp_header (&m, 3, 1, PROTO_STATUS);
        s_mp_key (&m, "rid");
        s_mp_raw (&m, encodings[i] + 1, encodings[i][0]);
        proto_frame_t f;
        assert_int_equal (s_decode (&m, &f, NULL), FEDQ_OK);
        assert_true (f.rid == 42);
        fedq_buf_free (&m.buf);
    }
    //  Negative values where only non-negative ones make sense.
    static const uint8_t negatives[][10] = {
        {1, 0xFF}, {2, 0xD0, 0xFE}, {3, 0xD1, 0xFF, 0x00},
        {9, 0xD3, 0x80, 0, 0, 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof negatives / sizeof negatives[0]; i++) {
        mp_t m;
        s_mp_init (&m);
        s_mp_header (&m, 3, 1, PROTO_STATUS);
        s_mp_key (&m, "rid");
        s_mp_raw (&m, negatives[i] + 1, negatives[i][0]);
        proto_frame_t f;
        const char *error = NULL;
        assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
        assert_non_null (strstr (error, "'rid'"));
        fedq_buf_free (&m.buf);
    }
    //  code: signed, any encoding that fits int32.
    struct {
        int64_t value;
        fedq_rc_t rc;
    } codes[] = {
        {-2, FEDQ_OK},  {-100, FEDQ_OK}, {-30000, FEDQ_OK},
        {INT32_MIN, FEDQ_OK}, {5, FEDQ_OK}, {INT32_MAX, FEDQ_OK},
        {(int64_t) INT32_MIN - 1, FEDQ_EPROTO},
        {(int64_t) INT32_MAX + 1, FEDQ_EPROTO},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        mp_t m;
        s_mp_init (&m);
        s_mp_header (&m, 3, 1, PROTO_ERROR);
        s_mp_key (&m, "code");
        msgpack_pack_int64 (&m.pk, codes[i].value);
        proto_frame_t f;
        assert_int_equal (s_decode (&m, &f, NULL), codes[i].rc);
        if (codes[i].rc == FEDQ_OK)
            assert_int_equal (f.code, codes[i].value);
        fedq_buf_free (&m.buf);
    }
    //  32-bit fields refuse what does not fit.
    const char *narrow[] = {"prefetch", "hb", "cmd"};
    for (size_t i = 0; i < 3; i++) {
        mp_t m;
        s_mp_init (&m);
        msgpack_pack_map (&m.pk, 3);
        s_mp_key (&m, "v");
        msgpack_pack_uint8 (&m.pk, 1);
        if (strcmp (narrow[i], "cmd") != 0) {
            s_mp_key (&m, "cmd");
            msgpack_pack_uint8 (&m.pk, PROTO_CONSUME);
        }
        else {
            s_mp_key (&m, "rid");
            msgpack_pack_uint8 (&m.pk, 1);
        }
        s_mp_key (&m, narrow[i]);
        msgpack_pack_uint64 (&m.pk, 1ull << 32);
        proto_frame_t f;
        const char *error = NULL;
        assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
        assert_non_null (strstr (error, narrow[i]));
        fedq_buf_free (&m.buf);
    }
    //  uint64 beyond INT64_MAX is no int64 timestamp.
    static const uint8_t ts[] = {0x81, 0xA2, 't', 's', 0xCF, 0x80, 0, 0, 0,
                                 0, 0, 0, 0};
    proto_msg_t msg;
    assert_int_equal (proto_msg_decode (ts, sizeof ts, &msg, NULL),
                      FEDQ_EPROTO);
}

//  ---------------------------------------------------------------------
//  Hostile input

static void
test_hostile_huge_counts (void **state)
{
    //  A map claiming 0xFFFFFFFF entries, alone and followed by a few.
    static const uint8_t map32[] = {0xDF, 0xFF, 0xFF, 0xFF, 0xFF, 0xA1, 'v',
                                    0x01};
    s_assert_both_refuse (map32, 5);
    s_assert_both_refuse (map32, sizeof map32);
    static const uint8_t map16[] = {0xDE, 0xFF, 0xFF, 0xA1, 'v', 0x01};
    s_assert_both_refuse (map16, sizeof map16);
    //  Top level is an array claiming 4e9 entries.
    static const uint8_t arr32[] = {0xDD, 0xEE, 0x6B, 0x28, 0x00, 0xC0};
    s_assert_both_refuse (arr32, sizeof arr32);

    //  Array claiming 4e9 entries under an unknown key, and as the path.
    mp_t m;
    s_mp_init (&m);
    s_mp_header (&m, 3, 1, PROTO_PING);
    s_mp_key (&m, "future");
    s_mp_raw (&m, arr32, sizeof arr32);
    proto_frame_t f;
    assert_int_equal (s_decode (&m, &f, NULL), FEDQ_EPROTO);
    fedq_buf_free (&m.buf);
    s_mp_init (&m);
    msgpack_pack_map (&m.pk, 1);
    s_mp_key (&m, "p");
    s_mp_raw (&m, arr32, sizeof arr32);
    proto_msg_t msg;
    assert_int_equal (proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL),
                      FEDQ_EPROTO);
    fedq_buf_free (&m.buf);

    //  A map claiming 4e9 headers.
    s_mp_init (&m);
    msgpack_pack_map (&m.pk, 1);
    s_mp_key (&m, "h");
    s_mp_raw (&m, map32, sizeof map32);
    assert_int_equal (proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL),
                      FEDQ_EPROTO);
    fedq_buf_free (&m.buf);

    //  str32, bin32 and ext32 claiming 4 GiB.
    static const uint8_t big[][6] = {
        {0xDB, 0xFF, 0xFF, 0xFF, 0xFF, 'x'},
        {0xC6, 0xFF, 0xFF, 0xFF, 0xFF, 'x'},
        {0xC9, 0xFF, 0xFF, 0xFF, 0xFF, 'x'},
    };
    for (size_t i = 0; i < 3; i++) {
        const char *keys[] = {"name", "text", "unknown-key"};
        for (size_t k = 0; k < 3; k++) {
            s_mp_init (&m);
            s_mp_header (&m, 4, 1, PROTO_DECLARE_QUEUE);
            s_mp_key (&m, "rid");
            msgpack_pack_uint8 (&m.pk, 9);
            s_mp_key (&m, keys[k]);
            s_mp_raw (&m, big[i], sizeof big[i]);
            const char *error = NULL;
            assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
            assert_non_null (error);
            //  The rid came first: it is reported.
            assert_true (f.present & PF_RID);
            assert_true (f.rid == 9);
            fedq_buf_free (&m.buf);
        }
        s_mp_init (&m);
        msgpack_pack_map (&m.pk, 1);
        s_mp_key (&m, i == 0 ? "o" : "zz");
        s_mp_raw (&m, big[i], sizeof big[i]);
        assert_int_equal (
            proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL),
            FEDQ_EPROTO);
        fedq_buf_free (&m.buf);
    }
    //  A key that is a str32 claiming 4 GiB.
    static const uint8_t bigkey[] = {0x81, 0xDB, 0xFF, 0xFF, 0xFF, 0xFF, 'v'};
    s_assert_both_refuse (bigkey, sizeof bigkey);
}

static void
s_check_every_cut (const uint8_t *data, size_t size, bool frame)
{
    for (size_t cut = 0; cut < size; cut++) {
        //  A fresh copy of exactly cut bytes, so ASan sees any over-read.
        uint8_t *copy = malloc (cut ? cut : 1);
        assert_non_null (copy);
        memcpy (copy, data, cut);
        const char *error = NULL;
        if (frame) {
            proto_frame_t f;
            assert_int_equal (proto_frame_decode (copy, cut, &f, &error),
                              FEDQ_EPROTO);
        }
        else {
            proto_msg_t m;
            assert_int_equal (proto_msg_decode (copy, cut, &m, &error),
                              FEDQ_EPROTO);
        }
        assert_non_null (error);
        free (copy);
    }
}

static void
test_hostile_truncated (void **state)
{
    for (size_t i = 0; i < S_NCMDS; i++) {
        proto_frame_t f;
        s_full_frame (&f, s_cmds[i]);
        fedq_buf_t buf = {0};
        proto_frame_encode (&f, &buf);
        s_check_every_cut (buf.data, buf.size, true);
        fedq_buf_free (&buf);
    }
    proto_msg_t m;
    s_full_msg (&m);
    fedq_buf_t buf = {0};
    proto_msg_encode (&m, &buf);
    s_check_every_cut (buf.data, buf.size, false);
    fedq_buf_free (&buf);

    //  The rid is reported when the cut falls after it.
    proto_frame_t f;
    s_min_frame (&f, PROTO_DECLARE_QUEUE);
    proto_frame_encode (&f, &buf);
    proto_frame_t out;
    assert_int_equal (
        proto_frame_decode (buf.data, buf.size - 2, &out, NULL), FEDQ_EPROTO);
    assert_true (out.present & PF_RID);
    assert_true (out.rid == 41);
    fedq_buf_free (&buf);
}

//  An unknown key whose value is `levels` nested arrays around a 0.
static void
s_nested (mp_t *m, int levels)
{
    for (int i = 0; i < levels; i++)
        msgpack_pack_array (&m->pk, 1);
    msgpack_pack_uint8 (&m->pk, 0);
}

static void
test_hostile_nesting (void **state)
{
    //  The header map is level 1; its values may nest 7 more levels.
    for (int levels = 0; levels <= 12; levels++) {
        mp_t m;
        s_mp_init (&m);
        s_mp_header (&m, 3, 1, PROTO_PING);
        s_mp_key (&m, "x-future");
        s_nested (&m, levels);
        proto_frame_t f;
        const char *error = NULL;
        fedq_rc_t expect =
            levels + 1 <= PROTO_MAX_DEPTH ? FEDQ_OK : FEDQ_EPROTO;
        assert_int_equal (s_decode (&m, &f, &error), expect);
        if (expect)
            assert_non_null (strstr (error, "nesting"));
        fedq_buf_free (&m.buf);

        //  Inside qo the value starts at level 3.
        s_mp_init (&m);
        s_mp_header (&m, 3, 1, PROTO_DECLARE_QUEUE);
        s_mp_key (&m, "qo");
        msgpack_pack_map (&m.pk, 1);
        s_mp_key (&m, "x-future");
        s_nested (&m, levels);
        expect = levels + 2 <= PROTO_MAX_DEPTH ? FEDQ_OK : FEDQ_EPROTO;
        assert_int_equal (s_decode (&m, &f, NULL), expect);
        fedq_buf_free (&m.buf);

        s_mp_init (&m);
        msgpack_pack_map (&m.pk, 1);
        s_mp_key (&m, "x-future");
        s_nested (&m, levels);
        proto_msg_t msg;
        expect = levels + 1 <= PROTO_MAX_DEPTH ? FEDQ_OK : FEDQ_EPROTO;
        assert_int_equal (
            proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL), expect);
        fedq_buf_free (&m.buf);
    }
    //  Far deeper than the cap: fails without deep recursion.
    mp_t m;
    s_mp_init (&m);
    s_mp_header (&m, 3, 1, PROTO_PING);
    s_mp_key (&m, "x");
    s_nested (&m, 50000);
    proto_frame_t f;
    assert_int_equal (s_decode (&m, &f, NULL), FEDQ_EPROTO);
    fedq_buf_free (&m.buf);
}

static void
test_hostile_version (void **state)
{
    mp_t m;
    s_mp_init (&m);
    s_mp_header (&m, 3, 2, PROTO_DECLARE_QUEUE);
    s_mp_key (&m, "rid");
    msgpack_pack_uint8 (&m.pk, 77);
    proto_frame_t f;
    const char *error = NULL;
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    assert_string_equal (error,
                         "unsupported protocol version 2; this node speaks 1");
    assert_true (f.present & PF_RID);
    assert_true (f.rid == 77);
    assert_int_equal (f.version, 2);
    fedq_buf_free (&m.buf);

    //  A later version may type its fields differently: the version is
    //  still the reported cause, and the rid after the odd field is found.
    s_mp_init (&m);
    s_mp_header (&m, 4, 7, PROTO_DECLARE_QUEUE);
    s_mp_key (&m, "name");
    msgpack_pack_uint8 (&m.pk, 5);
    s_mp_key (&m, "rid");
    msgpack_pack_uint16 (&m.pk, 1234);
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    assert_string_equal (error,
                         "unsupported protocol version 7; this node speaks 1");
    assert_true (f.rid == 1234);
    fedq_buf_free (&m.buf);

    //  Version 0 and a version too big for 32 bits.
    s_mp_init (&m);
    s_mp_header (&m, 2, 0, PROTO_PING);
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    assert_string_equal (error,
                         "unsupported protocol version 0; this node speaks 1");
    fedq_buf_free (&m.buf);
    s_mp_init (&m);
    msgpack_pack_map (&m.pk, 2);
    s_mp_key (&m, "v");
    msgpack_pack_uint64 (&m.pk, 1ull << 40);
    s_mp_key (&m, "cmd");
    msgpack_pack_uint8 (&m.pk, PROTO_PING);
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    fedq_buf_free (&m.buf);
}

static void
test_hostile_missing (void **state)
{
    mp_t m;
    s_mp_init (&m);
    msgpack_pack_map (&m.pk, 2);
    s_mp_key (&m, "v");
    msgpack_pack_uint8 (&m.pk, 1);
    s_mp_key (&m, "rid");
    msgpack_pack_uint8 (&m.pk, 3);
    proto_frame_t f;
    const char *error = NULL;
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    assert_non_null (strstr (error, "missing command"));
    assert_true (f.rid == 3 && (f.present & PF_RID));
    fedq_buf_free (&m.buf);

    s_mp_init (&m);
    msgpack_pack_map (&m.pk, 1);
    s_mp_key (&m, "cmd");
    msgpack_pack_uint8 (&m.pk, PROTO_PING);
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    assert_non_null (strstr (error, "missing protocol version"));
    fedq_buf_free (&m.buf);

    static const uint8_t empty_map[] = {0x80};
    assert_int_equal (proto_frame_decode (empty_map, 1, &f, &error),
                      FEDQ_EPROTO);
    assert_int_equal (proto_frame_decode (NULL, 0, &f, &error), FEDQ_EPROTO);
    proto_msg_t msg;
    assert_int_equal (proto_msg_decode (NULL, 0, &msg, &error), FEDQ_EPROTO);
}

//  A value of each msgpack family, to put where another is expected.
enum { V_UINT, V_NEG, V_STR, V_BOOL, V_NIL, V_MAP, V_ARRAY, V_FLOAT, V_BIN };

static void
s_pack_value (mp_t *m, int kind)
{
    switch (kind) {
        case V_UINT: msgpack_pack_uint8 (&m->pk, 1); break;
        case V_NEG: msgpack_pack_int8 (&m->pk, -3); break;
        case V_STR: msgpack_pack_str_with_body (&m->pk, "x", 1); break;
        case V_BOOL: msgpack_pack_true (&m->pk); break;
        case V_NIL: msgpack_pack_nil (&m->pk); break;
        case V_MAP: msgpack_pack_map (&m->pk, 0); break;
        case V_ARRAY: msgpack_pack_array (&m->pk, 0); break;
        case V_FLOAT: msgpack_pack_double (&m->pk, 1.5); break;
        case V_BIN:
            msgpack_pack_bin (&m->pk, 1);
            msgpack_pack_bin_body (&m->pk, "x", 1);
            break;
        default: fail ();
    }
}

static void
test_hostile_wrong_types (void **state)
{
    //  Each header key with the families it must refuse.
    static const struct {
        const char *key;
        int good;                   //  the family it takes
    } keys[] = {
        {"rid", V_UINT}, {"name", V_STR}, {"type", V_STR}, {"ex", V_STR},
        {"q", V_STR}, {"key", V_STR}, {"seq", V_UINT}, {"upto", V_UINT},
        {"tag", V_STR}, {"dtag", V_UINT}, {"prefetch", V_UINT},
        {"code", V_NEG}, {"text", V_STR}, {"link", V_STR},
        {"epoch", V_UINT}, {"node", V_STR}, {"json", V_STR},
        {"count", V_UINT}, {"hb", V_UINT}, {"qo", V_MAP},
        {"multiple", V_BOOL}, {"requeue", V_BOOL}, {"no_ack", V_BOOL},
        {"mandatory", V_BOOL}, {"if_unused", V_BOOL}, {"passive", V_BOOL},
        {"v", V_UINT}, {"cmd", V_UINT},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        for (int kind = V_UINT; kind <= V_BIN; kind++) {
            bool ok = kind == keys[i].good
                      || (keys[i].good == V_NEG && kind == V_UINT);
            mp_t m;
            s_mp_init (&m);
            bool core = strcmp (keys[i].key, "v") == 0
                        || strcmp (keys[i].key, "cmd") == 0;
            msgpack_pack_map (&m.pk, core ? 3 : 4);
            s_mp_key (&m, "rid");
            msgpack_pack_uint8 (&m.pk, 5);
            if (strcmp (keys[i].key, "v") != 0) {
                s_mp_key (&m, "v");
                msgpack_pack_uint8 (&m.pk, 1);
            }
            if (strcmp (keys[i].key, "cmd") != 0) {
                s_mp_key (&m, "cmd");
                msgpack_pack_uint8 (&m.pk, PROTO_DECLARE_QUEUE);
            }
            if (strcmp (keys[i].key, "rid") == 0) {
                //  rid twice would be a duplicate: use the key slot only.
                fedq_buf_free (&m.buf);
                s_mp_init (&m);
                s_mp_header (&m, 3, 1, PROTO_DECLARE_QUEUE);
            }
            s_mp_key (&m, keys[i].key);
            if (strcmp (keys[i].key, "v") == 0 && kind == V_UINT)
                ok = true;          //  packs 1, the right version
            s_pack_value (&m, kind);
            proto_frame_t f;
            const char *error = NULL;
            fedq_rc_t rc = s_decode (&m, &f, &error);
            if (ok) {
                assert_int_equal (rc, FEDQ_OK);
            }
            else {
                assert_int_equal (rc, FEDQ_EPROTO);
                assert_non_null (error);
                if (strcmp (keys[i].key, "v") != 0
                    && !strstr (error, keys[i].key))
                    fail_msg ("%s/%d: %s", keys[i].key, kind, error);
                if (strcmp (keys[i].key, "rid") != 0) {
                    assert_true (f.present & PF_RID);
                    assert_true (f.rid == 5);
                }
            }
            fedq_buf_free (&m.buf);
        }
    }
    //  Queue option keys.
    static const struct {
        const char *key;
        int good;
    } qkeys[] = {
        {"durable", V_BOOL}, {"auto_delete", V_BOOL}, {"sac", V_BOOL},
        {"max_priority", V_UINT}, {"overflow", V_UINT},
        {"max_length", V_UINT}, {"max_bytes", V_UINT}, {"ttl", V_UINT},
        {"dedup", V_UINT}, {"dlx", V_STR}, {"dlk", V_STR},
    };
    for (size_t i = 0; i < sizeof qkeys / sizeof qkeys[0]; i++) {
        for (int kind = V_UINT; kind <= V_BIN; kind++) {
            mp_t m;
            s_mp_init (&m);
            s_mp_header (&m, 3, 1, PROTO_DECLARE_QUEUE);
            s_mp_key (&m, "qo");
            msgpack_pack_map (&m.pk, 1);
            s_mp_key (&m, qkeys[i].key);
            s_pack_value (&m, kind);
            proto_frame_t f;
            const char *error = NULL;
            fedq_rc_t rc = s_decode (&m, &f, &error);
            if (kind == qkeys[i].good) {
                assert_int_equal (rc, FEDQ_OK);
                assert_true (f.present & PF_QOPTS);
            }
            else {
                assert_int_equal (rc, FEDQ_EPROTO);
                assert_non_null (strstr (error, qkeys[i].key));
            }
            fedq_buf_free (&m.buf);
        }
    }
    //  Range checks inside qo.
    const char *range[] = {"max_priority", "overflow"};
    const uint64_t over[] = {10, 2};
    for (size_t i = 0; i < 2; i++) {
        mp_t m;
        s_mp_init (&m);
        s_mp_header (&m, 3, 1, PROTO_DECLARE_QUEUE);
        s_mp_key (&m, "qo");
        msgpack_pack_map (&m.pk, 1);
        s_mp_key (&m, range[i]);
        msgpack_pack_uint64 (&m.pk, over[i]);
        proto_frame_t f;
        assert_int_equal (s_decode (&m, &f, NULL), FEDQ_EPROTO);
        fedq_buf_free (&m.buf);
    }
    //  Envelope keys.
    static const struct {
        const char *key;
        int good;
    } mkeys[] = {
        {"o", V_STR}, {"s", V_UINT}, {"mid", V_STR}, {"ex", V_STR},
        {"rk", V_STR}, {"ts", V_UINT}, {"ttl", V_UINT}, {"pri", V_UINT},
        {"rd", V_BOOL}, {"h", V_MAP}, {"p", V_ARRAY},
    };
    for (size_t i = 0; i < sizeof mkeys / sizeof mkeys[0]; i++) {
        for (int kind = V_UINT; kind <= V_BIN; kind++) {
            bool ok = kind == mkeys[i].good
                      || (strcmp (mkeys[i].key, "ts") == 0 && kind == V_NEG);
            mp_t m;
            s_mp_init (&m);
            msgpack_pack_map (&m.pk, 1);
            s_mp_key (&m, mkeys[i].key);
            s_pack_value (&m, kind);
            proto_msg_t msg;
            const char *error = NULL;
            fedq_rc_t rc =
                proto_msg_decode (m.buf.data, m.buf.size, &msg, &error);
            assert_int_equal (rc, ok ? FEDQ_OK : FEDQ_EPROTO);
            if (!ok) {
                char quoted[16];
                snprintf (quoted, sizeof quoted, "'%s'", mkeys[i].key);
                assert_non_null (strstr (error, quoted));
            }
            fedq_buf_free (&m.buf);
        }
    }
    //  Header values and path entries must be strings.
    mp_t m;
    s_mp_init (&m);
    msgpack_pack_map (&m.pk, 1);
    s_mp_key (&m, "h");
    msgpack_pack_map (&m.pk, 1);
    s_mp_key (&m, "k");
    msgpack_pack_uint8 (&m.pk, 1);
    proto_msg_t msg;
    assert_int_equal (proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL),
                      FEDQ_EPROTO);
    fedq_buf_free (&m.buf);
    s_mp_init (&m);
    msgpack_pack_map (&m.pk, 1);
    s_mp_key (&m, "p");
    msgpack_pack_array (&m.pk, 2);
    s_mp_key (&m, "sydney");
    msgpack_pack_nil (&m.pk);
    assert_int_equal (proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL),
                      FEDQ_EPROTO);
    fedq_buf_free (&m.buf);
    //  Priority over 9.
    static const uint8_t pri[] = {0x81, 0xA3, 'p', 'r', 'i', 0x0A};
    assert_int_equal (proto_msg_decode (pri, sizeof pri, &msg, NULL),
                      FEDQ_EPROTO);
}

static void
test_hostile_limits (void **state)
{
    //  Headers: 64 pass, 65 fail; path: 32 pass, 33 fail.
    for (uint32_t n = PROTO_MAX_HEADERS; n <= PROTO_MAX_HEADERS + 1; n++) {
        mp_t m;
        s_mp_init (&m);
        msgpack_pack_map (&m.pk, 1);
        s_mp_key (&m, "h");
        msgpack_pack_map (&m.pk, n);
        for (uint32_t i = 0; i < n; i++) {
            char key[16];
            snprintf (key, sizeof key, "k%u", i);
            s_mp_key (&m, key);
            s_mp_key (&m, "v");
        }
        proto_msg_t msg;
        const char *error = NULL;
        fedq_rc_t rc = proto_msg_decode (m.buf.data, m.buf.size, &msg, &error);
        if (n <= PROTO_MAX_HEADERS) {
            assert_int_equal (rc, FEDQ_OK);
            assert_int_equal (msg.nheaders, n);
        }
        else {
            assert_int_equal (rc, FEDQ_EPROTO);
            assert_non_null (strstr (error, "64 headers"));
        }
        fedq_buf_free (&m.buf);
    }
    for (uint32_t n = PROTO_MAX_PATH; n <= PROTO_MAX_PATH + 1; n++) {
        mp_t m;
        s_mp_init (&m);
        msgpack_pack_map (&m.pk, 1);
        s_mp_key (&m, "p");
        msgpack_pack_array (&m.pk, n);
        for (uint32_t i = 0; i < n; i++)
            s_mp_key (&m, "node");
        proto_msg_t msg;
        fedq_rc_t rc = proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL);
        assert_int_equal (rc, n <= PROTO_MAX_PATH ? FEDQ_OK : FEDQ_EPROTO);
        fedq_buf_free (&m.buf);
    }
    //  Names: 255 bytes pass, 256 fail, in the header and the envelope.
    const char *fkeys[] = {"name", "type", "ex", "q", "key", "tag", "link",
                           "node"};
    for (size_t k = 0; k < sizeof fkeys / sizeof fkeys[0]; k++) {
        for (size_t n = PROTO_MAX_NAME; n <= PROTO_MAX_NAME + 1; n++) {
            mp_t m;
            s_mp_init (&m);
            s_mp_header (&m, 3, 1, PROTO_BIND);
            s_mp_key (&m, fkeys[k]);
            fedq_str_t s = s_long (0, 'a', n);
            msgpack_pack_str_with_body (&m.pk, s.ptr, s.len);
            proto_frame_t f;
            assert_int_equal (s_decode (&m, &f, NULL),
                              n <= PROTO_MAX_NAME ? FEDQ_OK : FEDQ_EPROTO);
            fedq_buf_free (&m.buf);
        }
    }
    const char *mkeys[] = {"o", "mid", "ex", "rk"};
    for (size_t k = 0; k < 4; k++) {
        for (size_t n = PROTO_MAX_NAME; n <= PROTO_MAX_NAME + 1; n++) {
            mp_t m;
            s_mp_init (&m);
            msgpack_pack_map (&m.pk, 1);
            s_mp_key (&m, mkeys[k]);
            fedq_str_t s = s_long (0, 'a', n);
            msgpack_pack_str_with_body (&m.pk, s.ptr, s.len);
            proto_msg_t msg;
            assert_int_equal (
                proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL),
                n <= PROTO_MAX_NAME ? FEDQ_OK : FEDQ_EPROTO);
            fedq_buf_free (&m.buf);
        }
    }
    //  Frame size: a 65 KiB error text is too big; a STATUS_OK of 1 MiB
    //  json is not.
    proto_frame_t f;
    memset (&f, 0, sizeof f);
    f.cmd = PROTO_ERROR;
    f.present = PF_CODE | PF_TEXT;
    f.code = FEDQ_EINVAL;
    f.text = s_long (2, 't', 66000);
    fedq_buf_t buf = {0};
    proto_frame_encode (&f, &buf);
    proto_frame_t out;
    assert_int_equal (proto_frame_decode (buf.data, buf.size, &out, NULL),
                      FEDQ_EPROTO);
    fedq_buf_free (&buf);
    char *json = malloc (1 << 20);
    assert_non_null (json);
    memset (json, ' ', 1 << 20);
    f.cmd = PROTO_STATUS_OK;
    f.present = PF_RID | PF_JSON;
    f.rid = 1;
    f.json = (fedq_str_t) {json, 1 << 20};
    proto_frame_encode (&f, &buf);
    assert_int_equal (proto_frame_decode (buf.data, buf.size, &out, NULL),
                      FEDQ_OK);
    assert_int_equal (out.json.len, 1 << 20);
    fedq_buf_free (&buf);
    free (json);
    //  An envelope over 64 KiB.
    proto_msg_t msg;
    memset (&msg, 0, sizeof msg);
    msg.nheaders = 1;
    msg.headers[0].key = fedq_str_of ("big");
    msg.headers[0].value = s_long (2, 'b', 66000);
    proto_msg_encode (&msg, &buf);
    assert_int_equal (proto_msg_decode (buf.data, buf.size, &msg, NULL),
                      FEDQ_EPROTO);
    fedq_buf_free (&buf);
}

static void
test_hostile_structure (void **state)
{
    proto_frame_t f;
    const char *error = NULL;
    //  Duplicate key.
    mp_t m;
    s_mp_init (&m);
    s_mp_header (&m, 4, 1, PROTO_GET);
    s_mp_key (&m, "q");
    s_mp_key (&m, "a");
    s_mp_key (&m, "q");
    s_mp_key (&m, "b");
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    assert_non_null (strstr (error, "duplicate"));
    fedq_buf_free (&m.buf);
    //  Trailing bytes.
    s_mp_init (&m);
    s_mp_header (&m, 2, 1, PROTO_PING);
    msgpack_pack_nil (&m.pk);
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    assert_non_null (strstr (error, "trailing"));
    fedq_buf_free (&m.buf);
    //  Non-string key.
    s_mp_init (&m);
    s_mp_header (&m, 3, 1, PROTO_PING);
    msgpack_pack_uint8 (&m.pk, 7);
    msgpack_pack_uint8 (&m.pk, 7);
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    fedq_buf_free (&m.buf);
    //  The never-used type byte 0xc1 inside an unknown value.
    s_mp_init (&m);
    s_mp_header (&m, 3, 1, PROTO_PING);
    s_mp_key (&m, "x");
    s_mp_raw (&m, "\xc1", 1);
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_EPROTO);
    fedq_buf_free (&m.buf);
    //  Not a map at all.
    static const uint8_t notmap[][3] = {{0x01}, {0xA1, 'x'}, {0x90}, {0xC0}};
    for (size_t i = 0; i < 4; i++)
        s_assert_both_refuse (notmap[i], i == 1 ? 2 : 1);
    //  Envelope duplicate and trailing.
    static const uint8_t dup[] = {0x82, 0xA1, 's', 0x01, 0xA1, 's', 0x02};
    proto_msg_t msg;
    assert_int_equal (proto_msg_decode (dup, sizeof dup, &msg, &error),
                      FEDQ_EPROTO);
    static const uint8_t trail[] = {0x81, 0xA1, 's', 0x01, 0x00};
    assert_int_equal (proto_msg_decode (trail, sizeof trail, &msg, &error),
                      FEDQ_EPROTO);
}

static void
test_unknown_keys_skipped (void **state)
{
    //  Values of every msgpack type under keys this version does not know,
    //  at the top level and inside qo; the known fields still decode.
    mp_t m;
    s_mp_init (&m);
    s_mp_header (&m, 13, 1, PROTO_DECLARE_QUEUE);
    s_mp_key (&m, "x-map");
    msgpack_pack_map (&m.pk, 2);
    s_mp_key (&m, "a");
    msgpack_pack_array (&m.pk, 3);
    msgpack_pack_nil (&m.pk);
    msgpack_pack_float (&m.pk, 1.0f);
    msgpack_pack_double (&m.pk, 2.0);
    msgpack_pack_int64 (&m.pk, -1);
    msgpack_pack_map (&m.pk, 0);
    s_mp_key (&m, "name");
    s_mp_key (&m, "orders");
    s_mp_key (&m, "x-bin");
    msgpack_pack_bin (&m.pk, 3);
    msgpack_pack_bin_body (&m.pk, "abc", 3);
    s_mp_key (&m, "x-ext");
    msgpack_pack_ext (&m.pk, 5, 7);
    msgpack_pack_ext_body (&m.pk, "12345", 5);
    s_mp_key (&m, "x-fixext");
    msgpack_pack_array (&m.pk, 6);
    static const char zeros[300] = {0};
    for (size_t n = 1; n <= 16; n *= 2)
        msgpack_pack_ext_with_body (&m.pk, zeros, n, 1);     //  fixext n
    msgpack_pack_ext_with_body (&m.pk, zeros, 300, 2);       //  ext16
    s_mp_key (&m, "x-ints");
    static const uint8_t ints[] = {0x96, 0xCC, 1, 0xCD, 0, 1, 0xCE, 0, 0, 0,
                                   1, 0xD0, 0xFF, 0xD1, 0xFF, 0xFF, 0xE5};
    s_mp_raw (&m, ints, sizeof ints);
    s_mp_key (&m, "x-str8");
    fedq_str_t s = s_long (0, 's', 200);
    msgpack_pack_str_with_body (&m.pk, s.ptr, s.len);
    s_mp_key (&m, "x-str16-bin16");
    msgpack_pack_array (&m.pk, 2);
    s = s_long (0, 's', 300);
    msgpack_pack_str_with_body (&m.pk, s.ptr, s.len);
    msgpack_pack_bin_with_body (&m.pk, s.ptr, s.len);
    s_mp_key (&m, "rid");
    msgpack_pack_uint8 (&m.pk, 8);
    s_mp_key (&m, "qo");
    msgpack_pack_map (&m.pk, 2);
    s_mp_key (&m, "x-new-option");
    msgpack_pack_array (&m.pk, 1);
    msgpack_pack_true (&m.pk);
    s_mp_key (&m, "durable");
    msgpack_pack_true (&m.pk);
    s_mp_key (&m, "a-very-long-key-that-no-version-knows-about");
    msgpack_pack_false (&m.pk);
    proto_frame_t f;
    const char *error = NULL;
    assert_int_equal (s_decode (&m, &f, &error), FEDQ_OK);
    assert_true (fedq_str_eq (f.name, "orders"));
    assert_true (f.rid == 8);
    assert_true (f.qopts.durable);
    assert_int_equal (f.present, PF_NAME | PF_RID | PF_QOPTS);
    fedq_buf_free (&m.buf);

    //  Envelope: unknown keys around the known ones.
    s_mp_init (&m);
    msgpack_pack_map (&m.pk, 3);
    s_mp_key (&m, "x-trace");
    msgpack_pack_map (&m.pk, 1);
    s_mp_key (&m, "span");
    msgpack_pack_uint64 (&m.pk, 1ull << 60);
    s_mp_key (&m, "o");
    s_mp_key (&m, "perth");
    s_mp_key (&m, "zz");
    msgpack_pack_nil (&m.pk);
    proto_msg_t msg;
    assert_int_equal (proto_msg_decode (m.buf.data, m.buf.size, &msg, NULL),
                      FEDQ_OK);
    assert_true (fedq_str_eq (msg.origin, "perth"));
    fedq_buf_free (&m.buf);
}

static void
test_frame_check (void **state)
{
    proto_frame_t f;
    s_min_frame (&f, PROTO_DECLARE_QUEUE);
    const char *error = NULL;
    assert_int_equal (proto_frame_check (&f, &error), FEDQ_OK);
    f.present &= ~(uint32_t) PF_NAME;
    assert_int_equal (proto_frame_check (&f, &error), FEDQ_EPROTO);
    assert_string_equal (error,
                         "DECLARE_QUEUE: missing required field 'name'");
    s_min_frame (&f, PROTO_LINK_MSG);
    f.present &= ~(uint32_t) PF_EPOCH;
    assert_int_equal (proto_frame_check (&f, &error), FEDQ_EPROTO);
    assert_string_equal (error, "LINK_MSG: missing required field 'epoch'");
    f.cmd = 99;
    assert_int_equal (proto_frame_check (&f, &error), FEDQ_EPROTO);
    assert_string_equal (error, "unknown command 99");
    f.cmd = 30;
    assert_int_equal (proto_frame_check (&f, &error), FEDQ_EPROTO);
    assert_int_equal (proto_cmd_required (PROTO_LINK_CONFIRM),
                      PF_LINK | PF_EPOCH | PF_UPTO);
    assert_int_equal (proto_cmd_required (-4), 0);
}

//  xorshift64*: a fixed seed, so a failure reproduces.
static uint64_t
s_rand (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

//  Decode as both kinds; whatever decodes must survive a re-encode.
static void
s_decode_any (const uint8_t *data, size_t size, int *ok_count)
{
    proto_frame_t f, f2;
    const char *error = NULL;
    fedq_rc_t rc = proto_frame_decode (data, size, &f, &error);
    assert_true (rc == FEDQ_OK || rc == FEDQ_EPROTO);
    assert_true ((rc == FEDQ_OK) == (error == NULL));
    if (rc == FEDQ_OK) {
        (*ok_count)++;
        fedq_buf_t buf = {0};
        proto_frame_encode (&f, &buf);
        assert_int_equal (proto_frame_decode (buf.data, buf.size, &f2, NULL),
                          FEDQ_OK);
        s_assert_frame_eq (&f, &f2);
        fedq_buf_free (&buf);
    }
    proto_msg_t *m = malloc (2 * sizeof *m);
    assert_non_null (m);
    rc = proto_msg_decode (data, size, &m[0], &error);
    assert_true (rc == FEDQ_OK || rc == FEDQ_EPROTO);
    if (rc == FEDQ_OK) {
        (*ok_count)++;
        fedq_buf_t buf = {0};
        proto_msg_encode (&m[0], &buf);
        assert_int_equal (proto_msg_decode (buf.data, buf.size, &m[1], NULL),
                          FEDQ_OK);
        s_assert_msg_eq (&m[0], &m[1]);
        fedq_buf_free (&buf);
    }
    free (m);
}

static void
test_random_bytes (void **state)
{
    //  Random bytes drawn mostly from msgpack type bytes, so the decoders
    //  get past the first byte often.
    static const uint8_t types[] = {0x80, 0x81, 0x83, 0x8F, 0x90, 0x93, 0xA1,
                                    0xA3, 0xC0, 0xC2, 0xC3, 0xCC, 0xCD, 0xCE,
                                    0xCF, 0xD0, 0xD3, 0xD9, 0xDA, 0xDB, 0xDC,
                                    0xDD, 0xDE, 0xDF, 0xC4, 0xC7, 0xD4, 0xFF,
                                    'v', 'c', 0x01, 0x00};
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    uint8_t data[96];
    int ok = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t size = s_rand (&seed) % sizeof data;
        for (size_t i = 0; i < size; i++) {
            uint64_t r = s_rand (&seed);
            data[i] = (r & 3) ? types[(r >> 8) % sizeof types]
                              : (uint8_t) (r >> 16);
        }
        uint8_t *copy = malloc (size ? size : 1);
        assert_non_null (copy);
        memcpy (copy, data, size);
        s_decode_any (copy, size, &ok);
        free (copy);
    }
    //  Some random inputs (an empty map, for one) are valid envelopes.
    assert_true (ok > 0);
}

static void
test_random_mutations (void **state)
{
    //  Valid frames with a few bytes changed, inserted or removed.
    uint64_t seed = 42;
    int ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        fedq_buf_t buf = {0};
        if (iter % 4 == 3) {
            proto_msg_t m;
            s_n_hdr_full = 3;
            s_full_msg (&m);
            m.npath = 4;
            proto_msg_encode (&m, &buf);
        }
        else {
            proto_frame_t f;
            int cmd = s_cmds[s_rand (&seed) % S_NCMDS];
            if (iter % 2)
                s_full_frame (&f, cmd);
            else
                s_min_frame (&f, cmd);
            proto_frame_encode (&f, &buf);
        }
        int edits = 1 + (int) (s_rand (&seed) % 4);
        for (int e = 0; e < edits && buf.size > 1; e++) {
            size_t at = s_rand (&seed) % buf.size;
            uint64_t r = s_rand (&seed);
            switch (r % 3) {
                case 0: buf.data[at] = (uint8_t) (r >> 8); break;
                case 1: buf.data[at] ^= (uint8_t) (1u << ((r >> 8) % 8));
                    break;
                default:
                    memmove (buf.data + at, buf.data + at + 1,
                             buf.size - at - 1);
                    buf.size--;
                    break;
            }
        }
        uint8_t *copy = malloc (buf.size ? buf.size : 1);
        assert_non_null (copy);
        memcpy (copy, buf.data, buf.size);
        s_decode_any (copy, buf.size, &ok);
        free (copy);
        fedq_buf_free (&buf);
    }
    s_n_hdr_full = PROTO_MAX_HEADERS;
    assert_true (ok > 0);
}

//  ---------------------------------------------------------------------
//  Seed corpus for tests/fuzz/fuzz_proto

static int
s_write_file (const char *dir, const char *name, const void *data,
              size_t size)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "wb");
    if (!file) {
        fprintf (stderr, "%s: %s\n", path, strerror (errno));
        return -1;
    }
    size_t written = fwrite (data, 1, size, file);
    int rc = fclose (file);
    return written == size && rc == 0 ? 0 : -1;
}

static int
s_write_corpus (const char *dir)
{
    int rc = 0;
    char name[128];
    fedq_buf_t buf = {0};
    for (size_t i = 0; i < S_NCMDS; i++) {
        proto_frame_t f;
        const char *cmd = proto_cmd_name (s_cmds[i]);
        s_min_frame (&f, s_cmds[i]);
        proto_frame_encode (&f, &buf);
        snprintf (name, sizeof name, "frame-%s-min.bin", cmd);
        rc |= s_write_file (dir, name, buf.data, buf.size);
        buf.size = 0;
        s_full_frame (&f, s_cmds[i]);
        proto_frame_encode (&f, &buf);
        snprintf (name, sizeof name, "frame-%s-full.bin", cmd);
        rc |= s_write_file (dir, name, buf.data, buf.size);
        buf.size = 0;
    }
    proto_msg_t m;
    s_n_hdr_full = PROTO_MAX_HEADERS;
    s_full_msg (&m);
    proto_msg_encode (&m, &buf);
    rc |= s_write_file (dir, "msg-full.bin", buf.data, buf.size);
    buf.size = 0;
    m.nheaders = 2;
    m.npath = 2;
    proto_msg_encode (&m, &buf);
    rc |= s_write_file (dir, "msg-small.bin", buf.data, buf.size);
    buf.size = 0;
    memset (&m, 0, sizeof m);
    m.exchange = fedq_str_of ("orders");
    m.routing_key = fedq_str_of ("order.created");
    m.message_id = fedq_str_of ("id-1");
    proto_msg_encode (&m, &buf);
    rc |= s_write_file (dir, "msg-client.bin", buf.data, buf.size);
    buf.size = 0;
    fedq_buf_free (&buf);

    //  Hostile samples.
    static const uint8_t map32[] = {0xDF, 0xFF, 0xFF, 0xFF, 0xFF, 0xA1, 'v',
                                    0x01};
    rc |= s_write_file (dir, "hostile-map32.bin", map32, sizeof map32);
    static const uint8_t arr32[] = {0x83, 0xA1, 'v', 0x01, 0xA3, 'c', 'm',
                                    'd', 0x19, 0xA1, 'x', 0xDD, 0xEE, 0x6B,
                                    0x28, 0x00, 0xC0};
    rc |= s_write_file (dir, "hostile-array32.bin", arr32, sizeof arr32);
    static const uint8_t str32[] = {0x83, 0xA1, 'v', 0x01, 0xA3, 'c', 'm',
                                    'd', 0x05, 0xA4, 'n', 'a', 'm', 'e',
                                    0xDB, 0xFF, 0xFF, 0xFF, 0xFF, 'q'};
    rc |= s_write_file (dir, "hostile-str32.bin", str32, sizeof str32);
    static const uint8_t version[] = {0x83, 0xA1, 'v', 0x02, 0xA3, 'c', 'm',
                                      'd', 0x05, 0xA3, 'r', 'i', 'd', 0x07};
    rc |= s_write_file (dir, "hostile-version.bin", version, sizeof version);
    uint8_t deep[64];
    static const uint8_t head[] = {0x83, 0xA1, 'v', 0x01, 0xA3, 'c', 'm', 'd',
                                   0x19, 0xA1, 'x'};
    memcpy (deep, head, sizeof head);
    memset (deep + sizeof head, 0x91, sizeof deep - sizeof head - 1);
    deep[sizeof deep - 1] = 0x00;
    rc |= s_write_file (dir, "hostile-deep.bin", deep, sizeof deep);
    static const uint8_t headers[] = {0x81, 0xA1, 'h', 0xDE, 0x00, 0x41};
    rc |= s_write_file (dir, "hostile-headers.bin", headers, sizeof headers);
    return rc ? 1 : 0;
}

int
main (int argc, char *argv[])
{
    if (argc == 3 && strcmp (argv[1], "--write-corpus") == 0)
        return s_write_corpus (argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_cmd_names),
        cmocka_unit_test (test_frame_roundtrip_all_fields),
        cmocka_unit_test (test_frame_roundtrip_each_kind),
        cmocka_unit_test (test_frame_field_subsets),
        cmocka_unit_test (test_frame_writes_only_present),
        cmocka_unit_test (test_nack_requeue_default),
        cmocka_unit_test (test_msg_roundtrip),
        cmocka_unit_test (test_msg_writes_only_nonzero),
        cmocka_unit_test (test_integer_encodings),
        cmocka_unit_test (test_hostile_huge_counts),
        cmocka_unit_test (test_hostile_truncated),
        cmocka_unit_test (test_hostile_nesting),
        cmocka_unit_test (test_hostile_version),
        cmocka_unit_test (test_hostile_missing),
        cmocka_unit_test (test_hostile_wrong_types),
        cmocka_unit_test (test_hostile_limits),
        cmocka_unit_test (test_hostile_structure),
        cmocka_unit_test (test_unknown_keys_skipped),
        cmocka_unit_test (test_frame_check),
        cmocka_unit_test (test_random_bytes),
        cmocka_unit_test (test_random_mutations),
        cmocka_unit_test (test_fed_events_roundtrip),
        cmocka_unit_test (test_fed_events_hostile),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
