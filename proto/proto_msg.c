//  proto/proto_msg.c — the message envelope codec (docs/protocol.md,
//  "Message envelope"): part 1 of PUBLISH, DELIVER and LINK_MSG, and the
//  form in which the store keeps a message's metadata.
//
//  This runs once per message on every hop, so the decoder is a single
//  pass over the map with keys matched by length and bytes, and it clears
//  only the scalar fields of proto_msg_t (the header and path arrays are
//  only read up to nheaders and npath).
#include "proto_wire.h"

#include <assert.h>
#include <string.h>

#define S_IS(k, lit) (memcmp ((k), (lit), sizeof (lit) - 1) == 0)

//  Row numbers of the envelope keys, for duplicate detection.
enum {
    MK_O, MK_S, MK_MID, MK_EX, MK_RK, MK_TS, MK_TTL, MK_PRI, MK_RD, MK_H,
    MK_P, MK_UNKNOWN
};

void
proto_msg_encode (const proto_msg_t *msg, fedq_buf_t *out)
{
    assert (msg && out);
    assert (msg->nheaders <= PROTO_MAX_HEADERS);
    assert (msg->npath <= PROTO_MAX_PATH);
    msgpack_packer pk;
    proto_packer_init (&pk, out);
    //  One allocation check up front: strings, plus at most 9 bytes of
    //  type, length and key per item.
    size_t bytes = 128 + (size_t) msg->origin.len + msg->message_id.len
                   + msg->exchange.len + msg->routing_key.len;
    for (uint32_t i = 0; i < msg->nheaders; i++)
        bytes += 10 + (size_t) msg->headers[i].key.len
                 + msg->headers[i].value.len;
    for (uint32_t i = 0; i < msg->npath; i++)
        bytes += 5 + (size_t) msg->path[i].len;
    fedq_buf_reserve (out, bytes);
    size_t pairs = (size_t) (msg->origin.len != 0) + (msg->seq != 0)
                   + (msg->message_id.len != 0) + (msg->exchange.len != 0)
                   + (msg->routing_key.len != 0) + (msg->published_at != 0)
                   + (msg->ttl_ms != 0) + (msg->priority != 0)
                   + msg->redelivered + (msg->nheaders != 0)
                   + (msg->npath != 0);
    msgpack_pack_map (&pk, pairs);
    if (msg->origin.len) {
        PROTO_PACK_KEY (&pk, "o");
        proto_pack_str (&pk, msg->origin);
    }
    if (msg->seq) {
        PROTO_PACK_KEY (&pk, "s");
        msgpack_pack_uint64 (&pk, msg->seq);
    }
    if (msg->message_id.len) {
        PROTO_PACK_KEY (&pk, "mid");
        proto_pack_str (&pk, msg->message_id);
    }
    if (msg->exchange.len) {
        PROTO_PACK_KEY (&pk, "ex");
        proto_pack_str (&pk, msg->exchange);
    }
    if (msg->routing_key.len) {
        PROTO_PACK_KEY (&pk, "rk");
        proto_pack_str (&pk, msg->routing_key);
    }
    if (msg->published_at) {
        PROTO_PACK_KEY (&pk, "ts");
        msgpack_pack_int64 (&pk, msg->published_at);
    }
    if (msg->ttl_ms) {
        PROTO_PACK_KEY (&pk, "ttl");
        msgpack_pack_uint64 (&pk, msg->ttl_ms);
    }
    if (msg->priority) {
        PROTO_PACK_KEY (&pk, "pri");
        msgpack_pack_uint8 (&pk, msg->priority);
    }
    if (msg->redelivered) {
        PROTO_PACK_KEY (&pk, "rd");
        msgpack_pack_true (&pk);
    }
    if (msg->nheaders) {
        PROTO_PACK_KEY (&pk, "h");
        msgpack_pack_map (&pk, msg->nheaders);
        for (uint32_t i = 0; i < msg->nheaders; i++) {
            proto_pack_str (&pk, msg->headers[i].key);
            proto_pack_str (&pk, msg->headers[i].value);
        }
    }
    if (msg->npath) {
        PROTO_PACK_KEY (&pk, "p");
        msgpack_pack_array (&pk, msg->npath);
        for (uint32_t i = 0; i < msg->npath; i++)
            proto_pack_str (&pk, msg->path[i]);
    }
}

//  Row of an envelope key.
static int
s_key_find (fedq_str_t k)
{
    switch (k.len) {
        case 1:
            switch (k.ptr[0]) {
                case 'o': return MK_O;
                case 's': return MK_S;
                case 'h': return MK_H;
                case 'p': return MK_P;
                default: return MK_UNKNOWN;
            }
        case 2:
            return S_IS (k.ptr, "ex")   ? MK_EX
                   : S_IS (k.ptr, "rk") ? MK_RK
                   : S_IS (k.ptr, "ts") ? MK_TS
                   : S_IS (k.ptr, "rd") ? MK_RD
                                        : MK_UNKNOWN;
        case 3:
            return S_IS (k.ptr, "mid")   ? MK_MID
                   : S_IS (k.ptr, "ttl") ? MK_TTL
                   : S_IS (k.ptr, "pri") ? MK_PRI
                                         : MK_UNKNOWN;
        default:
            return MK_UNKNOWN;
    }
}

//  A name-like string of at most PROTO_MAX_NAME bytes.
static fedq_rc_t
s_read_name (proto_reader_t *r, fedq_str_t *out)
{
    if (proto_reader_str (r, out))
        return FEDQ_EPROTO;
    if (out->len > PROTO_MAX_NAME)
        return proto_reader_fail (r, "longer than 255 bytes");
    return FEDQ_OK;
}

//  h: map of str -> str, at most PROTO_MAX_HEADERS entries.
static fedq_rc_t
s_headers_decode (proto_reader_t *r, proto_msg_t *msg)
{
    uint32_t count;
    if (proto_reader_map (r, &count)) {
        if (!r->short_data)
            r->error = "envelope 'h': expected a map of string to string";
        return FEDQ_EPROTO;
    }
    if (count > PROTO_MAX_HEADERS)
        return proto_reader_fail (r, "envelope 'h': more than 64 headers");
    for (uint32_t i = 0; i < count; i++) {
        proto_header_t *h = &msg->headers[i];
        if (s_read_name (r, &h->key) || proto_reader_str (r, &h->value)) {
            if (!r->short_data)
                r->error = "envelope 'h': expected a map of string (at most "
                           "255 bytes) to string";
            return FEDQ_EPROTO;
        }
    }
    msg->nheaders = count;
    return FEDQ_OK;
}

//  p: array of node ids, at most PROTO_MAX_PATH entries.
static fedq_rc_t
s_path_decode (proto_reader_t *r, proto_msg_t *msg)
{
    uint32_t count;
    if (proto_reader_array (r, &count)) {
        if (!r->short_data)
            r->error = "envelope 'p': expected an array of node ids";
        return FEDQ_EPROTO;
    }
    if (count > PROTO_MAX_PATH)
        return proto_reader_fail (r, "envelope 'p': more than 32 nodes");
    for (uint32_t i = 0; i < count; i++)
        if (s_read_name (r, &msg->path[i])) {
            if (!r->short_data)
                r->error = "envelope 'p': expected node ids of at most 255 "
                           "bytes";
            return FEDQ_EPROTO;
        }
    msg->npath = count;
    return FEDQ_OK;
}

//  Read the value of envelope key `id`.
static fedq_rc_t
s_value_decode (proto_reader_t *r, int id, proto_msg_t *msg)
{
    static const char *const bad[MK_UNKNOWN] = {
        [MK_O] = "envelope 'o': expected a node id of at most 255 bytes",
        [MK_S] = "envelope 's': expected a non-negative integer",
        [MK_MID] = "envelope 'mid': expected a string of at most 255 bytes",
        [MK_EX] = "envelope 'ex': expected a name of at most 255 bytes",
        [MK_RK] = "envelope 'rk': expected a key of at most 255 bytes",
        [MK_TS] = "envelope 'ts': expected an integer",
        [MK_TTL] = "envelope 'ttl': expected a non-negative integer",
        [MK_PRI] = "envelope 'pri': expected an integer 0..9",
        [MK_RD] = "envelope 'rd': expected a bool",
    };
    uint64_t u = 0;
    fedq_rc_t rc = FEDQ_OK;
    switch (id) {
        case MK_O: rc = s_read_name (r, &msg->origin); break;
        case MK_S: rc = proto_reader_uint (r, &msg->seq); break;
        case MK_MID: rc = s_read_name (r, &msg->message_id); break;
        case MK_EX: rc = s_read_name (r, &msg->exchange); break;
        case MK_RK: rc = s_read_name (r, &msg->routing_key); break;
        case MK_TS: rc = proto_reader_int (r, &msg->published_at); break;
        case MK_TTL: rc = proto_reader_uint (r, &msg->ttl_ms); break;
        case MK_PRI:
            rc = proto_reader_uint (r, &u);
            if (!rc && u > 9)
                rc = proto_reader_fail (r, bad[MK_PRI]);
            msg->priority = rc ? 0 : (uint8_t) u;
            break;
        case MK_RD: rc = proto_reader_bool (r, &msg->redelivered); break;
        case MK_H: rc = s_headers_decode (r, msg); break;
        case MK_P: rc = s_path_decode (r, msg); break;
        default: break;
    }
    //  h and p word their own errors (counts over the caps, bad items).
    if (rc && !r->short_data && id != MK_H && id != MK_P)
        r->error = bad[id];
    return rc;
}

fedq_rc_t
proto_msg_decode (const uint8_t *data, size_t size, proto_msg_t *msg,
                  const char **error)
{
    assert (msg);
    //  Only the scalars: the arrays are valid up to nheaders and npath.
    msg->origin = msg->message_id = msg->exchange = msg->routing_key =
        (fedq_str_t) {NULL, 0};
    msg->seq = msg->ttl_ms = 0;
    msg->published_at = 0;
    msg->priority = 0;
    msg->redelivered = false;
    msg->nheaders = msg->npath = 0;

    const char *err = NULL;
    proto_reader_t r;
    if (size == 0 || !data) {
        err = "empty envelope";
        goto cleanup;
    }
    if (size > PROTO_MAX_FRAME) {
        err = "envelope larger than 65536 bytes";
        goto cleanup;
    }
    proto_reader_init (&r, data, size);
    uint32_t count;
    if (proto_reader_map (&r, &count)) {
        err = r.short_data ? r.error : "envelope is not a msgpack map";
        goto cleanup;
    }
    uint32_t seen = 0;
    for (uint32_t i = 0; i < count; i++) {
        fedq_str_t key;
        if (proto_reader_str (&r, &key)) {
            err = r.short_data ? r.error : "envelope map key is not a string";
            goto cleanup;
        }
        int id = s_key_find (key);
        if (id == MK_UNKNOWN) {
            if (proto_reader_skip (&r, 2)) {
                err = r.error;
                goto cleanup;
            }
            continue;
        }
        if (seen & (1u << id)) {
            err = "duplicate envelope key";
            goto cleanup;
        }
        seen |= 1u << id;
        if (s_value_decode (&r, id, msg)) {
            err = r.error;
            goto cleanup;
        }
    }
    if (proto_reader_left (&r))
        err = "trailing bytes after the envelope map";

cleanup:
    if (error)
        *error = err;
    return err ? FEDQ_EPROTO : FEDQ_OK;
}
