//  proto/proto.c — command names and the command header codec
//  (docs/protocol.md, "Command header").
//
//  The header is a msgpack map from short string keys to values. Each key
//  is one row of s_fields below: its wire name, its kind, where it lands in
//  proto_frame_t and its PF_* or PFL_* bit. The encoder walks the table in
//  order; the decoder finds the row by key length and bytes, so adding a
//  field is one row plus one case in s_field_find.
#include "proto_wire.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

//  Command names, indexed by proto_cmd_t.
static const char *const s_cmd_names[PROTO_CMD_MAX] = {
    [PROTO_HELLO] = "HELLO",
    [PROTO_HELLO_OK] = "HELLO_OK",
    [PROTO_OK] = "OK",
    [PROTO_ERROR] = "ERROR",
    [PROTO_DECLARE_QUEUE] = "DECLARE_QUEUE",
    [PROTO_DELETE_QUEUE] = "DELETE_QUEUE",
    [PROTO_PURGE_QUEUE] = "PURGE_QUEUE",
    [PROTO_DECLARE_EXCHANGE] = "DECLARE_EXCHANGE",
    [PROTO_DELETE_EXCHANGE] = "DELETE_EXCHANGE",
    [PROTO_BIND] = "BIND",
    [PROTO_UNBIND] = "UNBIND",
    [PROTO_PUBLISH] = "PUBLISH",
    [PROTO_CONFIRM] = "CONFIRM",
    [PROTO_RETURN] = "RETURN",
    [PROTO_CONSUME] = "CONSUME",
    [PROTO_CANCEL] = "CANCEL",
    [PROTO_DELIVER] = "DELIVER",
    [PROTO_GET] = "GET",
    [PROTO_GET_EMPTY] = "GET_EMPTY",
    [PROTO_ACK] = "ACK",
    [PROTO_NACK] = "NACK",
    [PROTO_REJECT] = "REJECT",
    [PROTO_STATUS] = "STATUS",
    [PROTO_STATUS_OK] = "STATUS_OK",
    [PROTO_PING] = "PING",
    [PROTO_PONG] = "PONG",
    [PROTO_BYE] = "BYE",
    [PROTO_LINK_HELLO] = "LINK_HELLO",
    [PROTO_LINK_WELCOME] = "LINK_WELCOME",
    [PROTO_LINK_MSG] = "LINK_MSG",
    [PROTO_LINK_CONFIRM] = "LINK_CONFIRM",
    [PROTO_LINK_REJECT] = "LINK_REJECT",
    [PROTO_LINK_SKIP] = "LINK_SKIP",
    [PROTO_FED_HELLO] = "FED_HELLO",
    [PROTO_FED_SYNC] = "FED_SYNC",
    [PROTO_FED_EVENT] = "FED_EVENT",
    [PROTO_FED_ACK] = "FED_ACK",
    [PROTO_FED_RESYNC] = "FED_RESYNC",
    [PROTO_FED_KEEP] = "FED_KEEP",
    [PROTO_FED_EVENTS] = "FED_EVENTS",
    [PROTO_FED_DIRECT] = "FED_DIRECT",
};

//  Fields each command requires besides v and cmd (docs/protocol.md).
static const uint32_t s_cmd_required[PROTO_CMD_MAX] = {
    [PROTO_OK] = PF_RID,
    [PROTO_ERROR] = PF_CODE,
    [PROTO_DECLARE_QUEUE] = PF_RID | PF_NAME,
    [PROTO_DELETE_QUEUE] = PF_RID | PF_NAME,
    [PROTO_PURGE_QUEUE] = PF_RID | PF_NAME,
    [PROTO_DECLARE_EXCHANGE] = PF_RID | PF_NAME | PF_TYPE,
    [PROTO_DELETE_EXCHANGE] = PF_RID | PF_NAME,
    [PROTO_BIND] = PF_RID | PF_EXCHANGE | PF_QUEUE,
    [PROTO_UNBIND] = PF_RID | PF_EXCHANGE | PF_QUEUE,
    [PROTO_PUBLISH] = PF_SEQ,
    [PROTO_CONFIRM] = PF_UPTO,
    [PROTO_RETURN] = PF_SEQ | PF_CODE,
    [PROTO_CONSUME] = PF_RID | PF_QUEUE,
    [PROTO_CANCEL] = PF_RID | PF_TAG,
    [PROTO_DELIVER] = PF_DTAG,
    [PROTO_GET] = PF_RID | PF_QUEUE,
    [PROTO_GET_EMPTY] = PF_RID,
    [PROTO_ACK] = PF_DTAG,
    [PROTO_NACK] = PF_DTAG,
    [PROTO_REJECT] = PF_DTAG,
    [PROTO_STATUS] = PF_RID,
    [PROTO_STATUS_OK] = PF_RID | PF_JSON,
    [PROTO_LINK_HELLO] = PF_LINK | PF_EPOCH | PF_NODE,
    [PROTO_LINK_WELCOME] = PF_LINK | PF_EPOCH | PF_UPTO,
    [PROTO_LINK_MSG] = PF_LINK | PF_EPOCH | PF_SEQ,
    [PROTO_LINK_CONFIRM] = PF_LINK | PF_EPOCH | PF_UPTO,
    [PROTO_LINK_REJECT] = PF_LINK | PF_EPOCH | PF_SEQ | PF_CODE,
    [PROTO_LINK_SKIP] = PF_LINK | PF_EPOCH | PF_SEQ,
    [PROTO_FED_EVENTS] = PF_QUEUE | PF_EPOCH | PF_COUNT,
    [PROTO_FED_DIRECT] = PF_QUEUE | PF_EPOCH | PF_SEQ | PF_JSON,
};

//  How a header value is typed on the wire and stored in the frame.
typedef enum {
    S_U32,                      //  uint, at most max (or UINT32_MAX)
    S_U64,                      //  uint
    S_I32,                      //  int that fits int32_t
    S_STR,                      //  str, at most max bytes (0: frame limit)
    S_FLAG,                     //  bool, a PFL_* bit
    S_QOPTS,                    //  map of queue options
} s_kind_t;

typedef struct {
    const char *name;           //  wire key
    uint8_t len;                //  strlen (name)
    uint8_t kind;               //  s_kind_t
    uint16_t offset;            //  offsetof the C field in proto_frame_t
    uint32_t bit;               //  PF_* (PFL_* for flags); 0 for v and cmd
    uint32_t max;               //  see s_kind_t
    const char *bad;            //  error for a wrong type or range
} s_field_t;

//  Row numbers; v and cmd come first (the encoder writes them first).
enum {
    FK_V, FK_CMD, FK_RID, FK_NAME, FK_TYPE, FK_EX, FK_Q, FK_KEY, FK_SEQ,
    FK_UPTO, FK_TAG, FK_DTAG, FK_PREFETCH, FK_CODE, FK_TEXT, FK_LINK,
    FK_EPOCH, FK_NODE, FK_JSON, FK_COUNT, FK_HB, FK_QO, FK_DIGEST,
    FK_MULTIPLE, FK_REQUEUE, FK_NO_ACK, FK_MANDATORY, FK_IF_UNUSED,
    FK_PASSIVE, FK_BATCH, FK_LISTED, FK_COUNT_
};

#define S_ROW(key, kind, field, bit, max)                                      \
    {key, sizeof (key) - 1, kind, offsetof (proto_frame_t, field), bit, max,   \
     "header key '" key "': wrong type or out of range"}

static const s_field_t s_fields[FK_COUNT_] = {
    [FK_V] = S_ROW ("v", S_U32, version, 0, 0),
    [FK_CMD] = S_ROW ("cmd", S_U32, cmd, 0, 0),
    [FK_RID] = S_ROW ("rid", S_U64, rid, PF_RID, 0),
    [FK_NAME] = S_ROW ("name", S_STR, name, PF_NAME, PROTO_MAX_NAME),
    [FK_TYPE] = S_ROW ("type", S_STR, type, PF_TYPE, PROTO_MAX_NAME),
    [FK_EX] = S_ROW ("ex", S_STR, exchange, PF_EXCHANGE, PROTO_MAX_NAME),
    [FK_Q] = S_ROW ("q", S_STR, queue, PF_QUEUE, PROTO_MAX_NAME),
    [FK_KEY] = S_ROW ("key", S_STR, key, PF_KEY, PROTO_MAX_NAME),
    [FK_SEQ] = S_ROW ("seq", S_U64, seq, PF_SEQ, 0),
    [FK_UPTO] = S_ROW ("upto", S_U64, upto, PF_UPTO, 0),
    [FK_TAG] = S_ROW ("tag", S_STR, tag, PF_TAG, PROTO_MAX_NAME),
    [FK_DTAG] = S_ROW ("dtag", S_U64, dtag, PF_DTAG, 0),
    [FK_PREFETCH] = S_ROW ("prefetch", S_U32, prefetch, PF_PREFETCH, 0),
    [FK_CODE] = S_ROW ("code", S_I32, code, PF_CODE, 0),
    [FK_TEXT] = S_ROW ("text", S_STR, text, PF_TEXT, 0),
    [FK_LINK] = S_ROW ("link", S_STR, link, PF_LINK, PROTO_MAX_NAME),
    [FK_EPOCH] = S_ROW ("epoch", S_U64, epoch, PF_EPOCH, 0),
    [FK_NODE] = S_ROW ("node", S_STR, node, PF_NODE, PROTO_MAX_NAME),
    [FK_JSON] = S_ROW ("json", S_STR, json, PF_JSON, 0),
    [FK_COUNT] = S_ROW ("count", S_U64, count, PF_COUNT, 0),
    [FK_HB] = S_ROW ("hb", S_U32, heartbeat_ms, PF_HEARTBEAT, 0),
    [FK_QO] = S_ROW ("qo", S_QOPTS, qopts, PF_QOPTS, 0),
    [FK_DIGEST] = S_ROW ("sha256", S_STR, digest, PF_DIGEST, 64),
    [FK_MULTIPLE] = S_ROW ("multiple", S_FLAG, flags, PFL_MULTIPLE, 0),
    [FK_REQUEUE] = S_ROW ("requeue", S_FLAG, flags, PFL_REQUEUE, 0),
    [FK_NO_ACK] = S_ROW ("no_ack", S_FLAG, flags, PFL_NO_ACK, 0),
    [FK_MANDATORY] = S_ROW ("mandatory", S_FLAG, flags, PFL_MANDATORY, 0),
    [FK_IF_UNUSED] = S_ROW ("if_unused", S_FLAG, flags, PFL_IF_UNUSED, 0),
    [FK_PASSIVE] = S_ROW ("passive", S_FLAG, flags, PFL_PASSIVE, 0),
    [FK_BATCH] = S_ROW ("batch", S_FLAG, flags, PFL_BATCH, 0),
    [FK_LISTED] = S_ROW ("listed", S_FLAG, flags, PFL_LISTED, 0),
};

#define S_PF_ALL ((uint32_t) (PF_DIGEST << 1) - 1)
#define S_PFL_ALL ((uint32_t) (PFL_LISTED << 1) - 1)

//  Per-thread text for errors that carry a number or a name.
static _Thread_local char s_error_text[128];

//  True when the key slice equals the literal; the caller matched length.
#define S_IS(k, lit) (memcmp ((k), (lit), sizeof (lit) - 1) == 0)

//  Row of a header key, or -1 for a key this version does not know.
static int
s_field_find (const char *k, uint32_t len)
{
    switch (len) {
        case 1:
            return k[0] == 'v' ? FK_V : k[0] == 'q' ? FK_Q : -1;
        case 2:
            return S_IS (k, "ex")   ? FK_EX
                   : S_IS (k, "hb") ? FK_HB
                   : S_IS (k, "qo") ? FK_QO
                                    : -1;
        case 3:
            return S_IS (k, "cmd")   ? FK_CMD
                   : S_IS (k, "rid") ? FK_RID
                   : S_IS (k, "seq") ? FK_SEQ
                   : S_IS (k, "key") ? FK_KEY
                   : S_IS (k, "tag") ? FK_TAG
                                     : -1;
        case 4:
            return S_IS (k, "dtag")   ? FK_DTAG
                   : S_IS (k, "upto") ? FK_UPTO
                   : S_IS (k, "name") ? FK_NAME
                   : S_IS (k, "type") ? FK_TYPE
                   : S_IS (k, "code") ? FK_CODE
                   : S_IS (k, "text") ? FK_TEXT
                   : S_IS (k, "link") ? FK_LINK
                   : S_IS (k, "node") ? FK_NODE
                   : S_IS (k, "json") ? FK_JSON
                                      : -1;
        case 5:
            return S_IS (k, "epoch")   ? FK_EPOCH
                   : S_IS (k, "count") ? FK_COUNT
                   : S_IS (k, "batch") ? FK_BATCH
                                       : -1;
        case 6:
            return S_IS (k, "no_ack")   ? FK_NO_ACK
                   : S_IS (k, "sha256") ? FK_DIGEST
                   : S_IS (k, "listed") ? FK_LISTED
                                        : -1;
        case 7:
            return S_IS (k, "requeue")   ? FK_REQUEUE
                   : S_IS (k, "passive") ? FK_PASSIVE
                                         : -1;
        case 8:
            return S_IS (k, "multiple")   ? FK_MULTIPLE
                   : S_IS (k, "prefetch") ? FK_PREFETCH
                                          : -1;
        case 9:
            return S_IS (k, "mandatory")   ? FK_MANDATORY
                   : S_IS (k, "if_unused") ? FK_IF_UNUSED
                                           : -1;
        default:
            return -1;
    }
}

const char *
proto_cmd_name (int cmd)
{
    if (cmd <= 0 || cmd >= PROTO_CMD_MAX || !s_cmd_names[cmd])
        return "UNKNOWN";
    return s_cmd_names[cmd];
}

uint32_t
proto_cmd_required (int cmd)
{
    if (cmd <= 0 || cmd >= PROTO_CMD_MAX)
        return 0;
    return s_cmd_required[cmd];
}

//  ---------------------------------------------------------------------
//  Encoding

static size_t
s_qopts_count (const proto_qopts_t *q)
{
    return (size_t) q->durable + q->auto_delete + q->single_active_consumer
           + (q->max_priority != 0) + (q->overflow != 0)
           + (q->max_length != 0) + (q->max_bytes != 0)
           + (q->message_ttl_ms != 0) + (q->dedup_window_ms != 0)
           + (q->dead_letter_exchange.len != 0)
           + (q->dead_letter_routing_key.len != 0);
}

//  Queue options: only the fields that differ from the defaults.
static void
s_qopts_encode (msgpack_packer *pk, const proto_qopts_t *q)
{
    msgpack_pack_map (pk, s_qopts_count (q));
    if (q->durable) {
        PROTO_PACK_KEY (pk, "durable");
        msgpack_pack_true (pk);
    }
    if (q->auto_delete) {
        PROTO_PACK_KEY (pk, "auto_delete");
        msgpack_pack_true (pk);
    }
    if (q->single_active_consumer) {
        PROTO_PACK_KEY (pk, "sac");
        msgpack_pack_true (pk);
    }
    if (q->max_priority) {
        PROTO_PACK_KEY (pk, "max_priority");
        msgpack_pack_uint8 (pk, q->max_priority);
    }
    if (q->overflow) {
        PROTO_PACK_KEY (pk, "overflow");
        msgpack_pack_uint8 (pk, q->overflow);
    }
    if (q->max_length) {
        PROTO_PACK_KEY (pk, "max_length");
        msgpack_pack_uint64 (pk, q->max_length);
    }
    if (q->max_bytes) {
        PROTO_PACK_KEY (pk, "max_bytes");
        msgpack_pack_uint64 (pk, q->max_bytes);
    }
    if (q->message_ttl_ms) {
        PROTO_PACK_KEY (pk, "ttl");
        msgpack_pack_uint64 (pk, q->message_ttl_ms);
    }
    if (q->dedup_window_ms) {
        PROTO_PACK_KEY (pk, "dedup");
        msgpack_pack_uint64 (pk, q->dedup_window_ms);
    }
    if (q->dead_letter_exchange.len) {
        PROTO_PACK_KEY (pk, "dlx");
        proto_pack_str (pk, q->dead_letter_exchange);
    }
    if (q->dead_letter_routing_key.len) {
        PROTO_PACK_KEY (pk, "dlk");
        proto_pack_str (pk, q->dead_letter_routing_key);
    }
}

void
proto_frame_encode (const proto_frame_t *frame, fedq_buf_t *out)
{
    assert (frame && out);
    msgpack_packer pk;
    proto_packer_init (&pk, out);
    uint32_t present = frame->present & S_PF_ALL;
    uint32_t flags = frame->flags & S_PFL_ALL;
    //  NACK always states requeue: its absence would mean "true".
    bool write_requeue = frame->cmd == PROTO_NACK;
    if (write_requeue)
        flags &= ~(uint32_t) PFL_REQUEUE;
    size_t pairs = 2 + (size_t) __builtin_popcount (present)
                   + (size_t) __builtin_popcount (flags) + write_requeue;
    fedq_buf_reserve (out, 16 + pairs * 12);
    msgpack_pack_map (&pk, pairs);
    PROTO_PACK_KEY (&pk, "v");
    msgpack_pack_uint32 (&pk, frame->version ? frame->version : PROTO_VERSION);
    PROTO_PACK_KEY (&pk, "cmd");
    msgpack_pack_uint32 (&pk, frame->cmd);

    const char *base = (const char *) frame;
    for (int i = FK_RID; i < FK_COUNT_; i++) {
        const s_field_t *f = &s_fields[i];
        if (f->kind == S_FLAG) {
            bool set = (frame->flags & f->bit) != 0;
            if (!(flags & f->bit) && !(i == FK_REQUEUE && write_requeue))
                continue;
            msgpack_pack_str_with_body (&pk, f->name, f->len);
            if (set)
                msgpack_pack_true (&pk);
            else
                msgpack_pack_false (&pk);
            continue;
        }
        if (!(present & f->bit))
            continue;
        msgpack_pack_str_with_body (&pk, f->name, f->len);
        const void *field = base + f->offset;
        switch ((s_kind_t) f->kind) {
            case S_U32:
                msgpack_pack_uint32 (&pk, *(const uint32_t *) field);
                break;
            case S_U64:
                msgpack_pack_uint64 (&pk, *(const uint64_t *) field);
                break;
            case S_I32:
                msgpack_pack_int32 (&pk, *(const int32_t *) field);
                break;
            case S_STR:
                proto_pack_str (&pk, *(const fedq_str_t *) field);
                break;
            case S_QOPTS:
                s_qopts_encode (&pk, &frame->qopts);
                break;
            case S_FLAG:
                break;
        }
    }
}

//  ---------------------------------------------------------------------
//  Decoding

//  Read a string value of at most max bytes (0: no limit but the frame).
static fedq_rc_t
s_read_name (proto_reader_t *r, fedq_str_t *out, uint32_t max,
             const char *bad)
{
    if (proto_reader_str (r, out))
        return FEDQ_EPROTO;
    if (max && out->len > max)
        return proto_reader_fail (r, bad);
    return FEDQ_OK;
}

//  Read a uint of at most max into *out.
static fedq_rc_t
s_read_bounded (proto_reader_t *r, uint64_t max, uint64_t *out)
{
    if (proto_reader_uint (r, out))
        return FEDQ_EPROTO;
    if (*out > max)
        return proto_reader_fail (r, "integer out of range");
    return FEDQ_OK;
}

//  The qo map (depth 2). Unknown option keys are skipped.
static fedq_rc_t
s_qopts_decode (proto_reader_t *r, proto_qopts_t *q)
{
    uint32_t count;
    if (proto_reader_map (r, &count)) {
        if (!r->short_data)
            r->error = "header key 'qo': expected a map of queue options";
        return FEDQ_EPROTO;
    }
    uint32_t seen = 0;
    for (uint32_t i = 0; i < count; i++) {
        fedq_str_t k;
        if (proto_reader_str (r, &k))
            return FEDQ_EPROTO;
        uint64_t v = 0;
        int id = -1;
        fedq_rc_t rc = FEDQ_OK;
        const char *bad = NULL;
        switch (k.len) {
            case 3:
                if (S_IS (k.ptr, "sac")) {
                    id = 0;
                    rc = proto_reader_bool (r, &q->single_active_consumer);
                    bad = "qo.sac: expected a bool";
                }
                else if (S_IS (k.ptr, "ttl")) {
                    id = 1;
                    rc = proto_reader_uint (r, &q->message_ttl_ms);
                    bad = "qo.ttl: expected a non-negative integer";
                }
                else if (S_IS (k.ptr, "dlx")) {
                    id = 2;
                    bad = "qo.dlx: expected a name of at most 255 bytes";
                    rc = s_read_name (r, &q->dead_letter_exchange,
                                      PROTO_MAX_NAME, bad);
                }
                else if (S_IS (k.ptr, "dlk")) {
                    id = 3;
                    bad = "qo.dlk: expected a key of at most 255 bytes";
                    rc = s_read_name (r, &q->dead_letter_routing_key,
                                      PROTO_MAX_NAME, bad);
                }
                break;
            case 5:
                if (S_IS (k.ptr, "dedup")) {
                    id = 4;
                    rc = proto_reader_uint (r, &q->dedup_window_ms);
                    bad = "qo.dedup: expected a non-negative integer";
                }
                break;
            case 7:
                if (S_IS (k.ptr, "durable")) {
                    id = 5;
                    rc = proto_reader_bool (r, &q->durable);
                    bad = "qo.durable: expected a bool";
                }
                break;
            case 8:
                if (S_IS (k.ptr, "overflow")) {
                    id = 6;
                    rc = s_read_bounded (r, PROTO_OVERFLOW_REJECT, &v);
                    q->overflow = (uint8_t) v;
                    bad = "qo.overflow: expected 0 (drop-head) or 1 "
                          "(reject-publish)";
                }
                break;
            case 9:
                if (S_IS (k.ptr, "max_bytes")) {
                    id = 7;
                    rc = proto_reader_uint (r, &q->max_bytes);
                    bad = "qo.max_bytes: expected a non-negative integer";
                }
                break;
            case 10:
                if (S_IS (k.ptr, "max_length")) {
                    id = 8;
                    rc = proto_reader_uint (r, &q->max_length);
                    bad = "qo.max_length: expected a non-negative integer";
                }
                break;
            case 11:
                if (S_IS (k.ptr, "auto_delete")) {
                    id = 9;
                    rc = proto_reader_bool (r, &q->auto_delete);
                    bad = "qo.auto_delete: expected a bool";
                }
                break;
            case 12:
                if (S_IS (k.ptr, "max_priority")) {
                    id = 10;
                    rc = s_read_bounded (r, 9, &v);
                    q->max_priority = (uint8_t) v;
                    bad = "qo.max_priority: expected an integer 0..9";
                }
                break;
            default:
                break;
        }
        if (id < 0) {
            if (proto_reader_skip (r, 3))
                return FEDQ_EPROTO;
            continue;
        }
        if (rc) {
            if (!r->short_data)
                r->error = bad;
            return FEDQ_EPROTO;
        }
        if (seen & (1u << id))
            return proto_reader_fail (r, "qo: duplicate key");
        seen |= 1u << id;
    }
    return FEDQ_OK;
}

//  Read the value of one known header key into the frame.
static fedq_rc_t
s_field_decode (proto_reader_t *r, const s_field_t *f, proto_frame_t *frame)
{
    char *field = (char *) frame + f->offset;
    uint64_t u = 0;
    int64_t s = 0;
    bool b = false;
    fedq_rc_t rc = FEDQ_OK;
    switch ((s_kind_t) f->kind) {
        case S_U32:
            rc = s_read_bounded (r, f->max ? f->max : UINT32_MAX, &u);
            if (!rc)
                *(uint32_t *) field = (uint32_t) u;
            break;
        case S_U64:
            rc = proto_reader_uint (r, (uint64_t *) field);
            break;
        case S_I32:
            rc = proto_reader_int (r, &s);
            if (!rc && (s < INT32_MIN || s > INT32_MAX))
                rc = proto_reader_fail (r, f->bad);
            if (!rc)
                *(int32_t *) field = (int32_t) s;
            break;
        case S_STR:
            rc = s_read_name (r, (fedq_str_t *) field, f->max, f->bad);
            break;
        case S_FLAG:
            rc = proto_reader_bool (r, &b);
            if (!rc && b)
                frame->flags |= f->bit;
            else if (!rc)
                frame->flags &= ~f->bit;
            break;
        case S_QOPTS:
            rc = s_qopts_decode (r, &frame->qopts);
            if (rc)
                return rc;
            break;
    }
    if (rc) {
        if (!r->short_data && f->kind != S_QOPTS)
            r->error = f->bad;
        return rc;
    }
    if (f->kind != S_FLAG)
        frame->present |= f->bit;
    return FEDQ_OK;
}

//  What the full parse learned besides the frame fields.
typedef struct {
    bool has_version;
    bool has_cmd;
    bool has_requeue;
} s_parse_t;

//  Parse the whole header map into frame; stops at the first fault.
static fedq_rc_t
s_frame_parse (proto_reader_t *r, proto_frame_t *frame, s_parse_t *seen_out)
{
    uint32_t count;
    if (proto_reader_map (r, &count)) {
        if (!r->short_data)
            r->error = "header is not a msgpack map";
        return FEDQ_EPROTO;
    }
    uint32_t seen = 0;
    for (uint32_t i = 0; i < count; i++) {
        fedq_str_t key;
        if (proto_reader_str (r, &key)) {
            if (!r->short_data)
                r->error = "header map key is not a string";
            return FEDQ_EPROTO;
        }
        int id = s_field_find (key.ptr, key.len);
        if (id < 0) {
            //  Forward compatibility: skip what a later version added.
            if (proto_reader_skip (r, 2))
                return FEDQ_EPROTO;
            continue;
        }
        if (seen & (1u << id))
            return proto_reader_fail (r, "duplicate header key");
        seen |= 1u << id;
        if (s_field_decode (r, &s_fields[id], frame))
            return FEDQ_EPROTO;
        seen_out->has_version |= id == FK_V;
        seen_out->has_cmd |= id == FK_CMD;
        seen_out->has_requeue |= id == FK_REQUEUE;
    }
    if (proto_reader_left (r))
        return proto_reader_fail (r, "trailing bytes after the header map");
    return FEDQ_OK;
}

//  After a failed parse, look again for the request id and the version:
//  walk the top-level keys only, skipping values, until the data stops
//  making sense. Lets a node answer a malformed request with its rid.
static void
s_frame_rescue (const uint8_t *data, size_t size, proto_frame_t *frame,
                bool *has_version)
{
    proto_reader_t r;
    proto_reader_init (&r, data, size < PROTO_MAX_FRAME ? size
                                                        : PROTO_MAX_FRAME);
    uint32_t count;
    if (proto_reader_map (&r, &count))
        return;
    bool need_rid = !(frame->present & PF_RID);
    for (uint32_t i = 0; i < count; i++) {
        fedq_str_t key;
        if (proto_reader_str (&r, &key))
            return;
        uint64_t value;
        if (key.len == 3 && S_IS (key.ptr, "rid") && need_rid) {
            if (proto_reader_uint (&r, &value))
                return;
            frame->rid = value;
            frame->present |= PF_RID;
            need_rid = false;
        }
        else if (key.len == 1 && key.ptr[0] == 'v' && !*has_version) {
            if (proto_reader_uint (&r, &value) || value > UINT32_MAX)
                return;
            frame->version = (uint32_t) value;
            *has_version = true;
        }
        else if (proto_reader_skip (&r, 2))
            return;
    }
}

static const char *
s_version_error (uint32_t version)
{
    snprintf (s_error_text, sizeof s_error_text,
              "unsupported protocol version %u; this node speaks %d",
              version, PROTO_VERSION);
    return s_error_text;
}

fedq_rc_t
proto_frame_decode (const uint8_t *data, size_t size, proto_frame_t *frame,
                    const char **error)
{
    assert (frame);
    memset (frame, 0, sizeof *frame);
    const char *err = NULL;
    s_parse_t seen = {false, false, false};
    proto_reader_t r;
    if (size == 0 || !data) {
        err = "empty header";
        goto cleanup;
    }
    if (size > PROTO_MAX_STATUS) {
        err = "header larger than the protocol limit";
        s_frame_rescue (data, size, frame, &seen.has_version);
        goto cleanup;
    }
    proto_reader_init (&r, data, size);
    if (s_frame_parse (&r, frame, &seen)) {
        err = r.error;
        s_frame_rescue (data, size, frame, &seen.has_version);
        goto cleanup;
    }
    if (!seen.has_version)
        err = "missing protocol version 'v'";
    else if (!seen.has_cmd)
        err = "missing command 'cmd'";
    else if (size > PROTO_MAX_FRAME && frame->cmd != PROTO_STATUS_OK)
        err = "header larger than 65536 bytes";
    if (frame->cmd == PROTO_NACK && !seen.has_requeue)
        frame->flags |= PFL_REQUEUE;

cleanup:
    //  Another version may lay out its fields differently: whatever else
    //  went wrong, the version is the error to report.
    if (seen.has_version && frame->version != PROTO_VERSION)
        err = s_version_error (frame->version);
    if (error)
        *error = err;
    return err ? FEDQ_EPROTO : FEDQ_OK;
}

//  Wire name of the field with PF_* bit `bit`.
static const char *
s_field_name (uint32_t bit)
{
    for (int i = FK_RID; i < FK_COUNT_; i++)
        if (s_fields[i].kind != S_FLAG && s_fields[i].bit == bit)
            return s_fields[i].name;
    return "?";
}

fedq_rc_t
proto_frame_check (const proto_frame_t *frame, const char **error)
{
    assert (frame);
    const char *err = NULL;
    const char *name = proto_cmd_name ((int) frame->cmd);
    if (frame->cmd >= PROTO_CMD_MAX || strcmp (name, "UNKNOWN") == 0) {
        snprintf (s_error_text, sizeof s_error_text, "unknown command %u",
                  frame->cmd);
        err = s_error_text;
        goto cleanup;
    }
    uint32_t missing = s_cmd_required[frame->cmd] & ~frame->present;
    if (missing) {
        uint32_t bit = missing & (~missing + 1);
        snprintf (s_error_text, sizeof s_error_text,
                  "%s: missing required field '%s'", name,
                  s_field_name (bit));
        err = s_error_text;
    }

cleanup:
    if (error)
        *error = err;
    return err ? FEDQ_EPROTO : FEDQ_OK;
}
