//  proto/proto_wire.h — msgpack primitives shared by the proto codecs
//  (internal to proto/): a bounded, non-allocating cursor reader and a
//  msgpack-c packer that appends into a fedq_buf_t.
//
//  The reader checks every declared length and count against the bytes
//  left before it trusts them, so a map claiming 4 billion entries fails
//  at once; it returns slices into the input and never allocates. Every
//  function returns FEDQ_OK or FEDQ_EPROTO and, on failure, leaves a
//  static description in reader->error (the first failure wins).
#ifndef PROTO_WIRE_H_INCLUDED
#define PROTO_WIRE_H_INCLUDED

#include "proto.h"

#include <msgpack.h>
#include <string.h>

typedef struct {
    const uint8_t *pos;         //  next byte to read
    const uint8_t *end;         //  one past the last byte
    const char *error;          //  first failure, static text, or NULL
    bool short_data;            //  the failure was truncation or a length
                                //  beyond the data, not a type mismatch
} proto_reader_t;

//  Start reading size bytes at data (borrowed).
void
    proto_reader_init (proto_reader_t *self, const uint8_t *data,
                       size_t size);

//  Bytes not yet read.
static inline size_t
proto_reader_left (const proto_reader_t *self)
{
    return (size_t) (self->end - self->pos);
}

//  Record the first failure and return FEDQ_EPROTO.
fedq_rc_t
    proto_reader_fail (proto_reader_t *self, const char *error);

//  Read a map header; *count is at most half the bytes left.
fedq_rc_t
    proto_reader_map (proto_reader_t *self, uint32_t *count);

//  Read an array header; *count is at most the bytes left.
fedq_rc_t
    proto_reader_array (proto_reader_t *self, uint32_t *count);

//  Read a str (fixstr, str8/16/32) as a slice into the input.
fedq_rc_t
    proto_reader_str (proto_reader_t *self, fedq_str_t *out);

//  Read a bin (bin8/16/32) as a slice into the input.
fedq_rc_t
    proto_reader_bin (proto_reader_t *self, const uint8_t **data,
                      uint32_t *len);

//  Read a non-negative integer in any msgpack integer encoding.
fedq_rc_t
    proto_reader_uint (proto_reader_t *self, uint64_t *out);

//  Read a signed integer in any msgpack integer encoding that fits int64.
fedq_rc_t
    proto_reader_int (proto_reader_t *self, int64_t *out);

//  Read a bool.
fedq_rc_t
    proto_reader_bool (proto_reader_t *self, bool *out);

//  Skip one value of any type. depth is the nesting level of the value
//  (the top-level map is 1); containers deeper than PROTO_MAX_DEPTH fail.
fedq_rc_t
    proto_reader_skip (proto_reader_t *self, int depth);

//  msgpack-c write callback appending to a fedq_buf_t. Inline, so the
//  compiler can see through the packer's callback on the hot path.
static inline int
proto_buf_write (void *data, const char *buf, size_t len)
{
    fedq_buf_t *out = (fedq_buf_t *) data;
    if (len == 0)
        return 0;
    if (out->cap - out->size < len)
        fedq_buf_reserve (out, len);
    memcpy (out->data + out->size, buf, len);
    out->size += len;
    return 0;
}

//  Set up a msgpack-c packer that appends to out.
static inline void
proto_packer_init (msgpack_packer *pk, fedq_buf_t *out)
{
    msgpack_packer_init (pk, out, proto_buf_write);
}

//  Pack a string slice (an absent slice packs as "").
static inline void
proto_pack_str (msgpack_packer *pk, fedq_str_t s)
{
    msgpack_pack_str (pk, s.len);
    if (s.len)
        msgpack_pack_str_body (pk, s.ptr, s.len);
}

//  Pack a map key given as a literal.
#define PROTO_PACK_KEY(pk, lit) msgpack_pack_str_with_body ((pk), (lit), \
                                                            sizeof (lit) - 1)

#endif
