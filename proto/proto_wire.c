//  proto/proto_wire.c — the bounded msgpack reader and the buffer packer
//  shared by the proto codecs (see proto_wire.h).
//
//  msgpack-c's own unpacker allocates objects from the counts a peer
//  declares and has no bounded pull API; this reader walks the bytes with
//  a cursor instead, checks each length and count against what is left
//  before using it, and hands out slices into the input.
#include "proto_wire.h"

#include <string.h>

static inline uint16_t
s_load16 (const uint8_t *p)
{
    return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}

static inline uint32_t
s_load32 (const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}

static inline uint64_t
s_load64 (const uint8_t *p)
{
    return (uint64_t) s_load32 (p) << 32 | s_load32 (p + 4);
}

void
proto_reader_init (proto_reader_t *self, const uint8_t *data, size_t size)
{
    self->pos = data;
    self->end = data + size;
    self->error = NULL;
    self->short_data = false;
}

fedq_rc_t
proto_reader_fail (proto_reader_t *self, const char *error)
{
    if (!self->error)
        self->error = error;
    return FEDQ_EPROTO;
}

//  Fail because the data ends before what it declares.
static fedq_rc_t
s_fail_short (proto_reader_t *self, const char *error)
{
    if (!self->error)
        self->short_data = true;
    return proto_reader_fail (self, error);
}

//  Read a big-endian length of width bytes (1, 2 or 4) that follows the
//  type byte, then check that it leaves room for need bytes per unit.
static fedq_rc_t
s_read_length (proto_reader_t *self, size_t width, size_t unit,
               uint32_t *length)
{
    if (proto_reader_left (self) < width)
        return s_fail_short (self, "truncated length");
    uint32_t n = width == 1   ? self->pos[0]
                 : width == 2 ? s_load16 (self->pos)
                              : s_load32 (self->pos);
    self->pos += width;
    //  Division, not multiplication: unit * n could overflow on 32 bits.
    if (n > proto_reader_left (self) / unit)
        return s_fail_short (self, "declared length exceeds the data");
    *length = n;
    return FEDQ_OK;
}

fedq_rc_t
proto_reader_map (proto_reader_t *self, uint32_t *count)
{
    if (self->pos >= self->end)
        return s_fail_short (self, "truncated: expected a map");
    uint8_t type = *self->pos;
    if ((type & 0xF0) == 0x80) {
        self->pos++;
        *count = type & 0x0F;
        if (*count > proto_reader_left (self) / 2)
            return s_fail_short (self, "declared length exceeds the data");
        return FEDQ_OK;
    }
    if (type == 0xDE || type == 0xDF) {
        self->pos++;
        return s_read_length (self, type == 0xDE ? 2 : 4, 2, count);
    }
    return proto_reader_fail (self, "expected a map");
}

fedq_rc_t
proto_reader_array (proto_reader_t *self, uint32_t *count)
{
    if (self->pos >= self->end)
        return s_fail_short (self, "truncated: expected an array");
    uint8_t type = *self->pos;
    if ((type & 0xF0) == 0x90) {
        self->pos++;
        *count = type & 0x0F;
        if (*count > proto_reader_left (self))
            return s_fail_short (self, "declared length exceeds the data");
        return FEDQ_OK;
    }
    if (type == 0xDC || type == 0xDD) {
        self->pos++;
        return s_read_length (self, type == 0xDC ? 2 : 4, 1, count);
    }
    return proto_reader_fail (self, "expected an array");
}

fedq_rc_t
proto_reader_str (proto_reader_t *self, fedq_str_t *out)
{
    if (self->pos >= self->end)
        return s_fail_short (self, "truncated: expected a string");
    uint8_t type = *self->pos;
    uint32_t len;
    if ((type & 0xE0) == 0xA0) {
        self->pos++;
        len = type & 0x1F;
        if (len > proto_reader_left (self))
            return s_fail_short (self, "declared length exceeds the data");
    }
    else if (type >= 0xD9 && type <= 0xDB) {
        self->pos++;
        size_t width = (size_t) 1 << (type - 0xD9);
        if (s_read_length (self, width, 1, &len))
            return FEDQ_EPROTO;
    }
    else
        return proto_reader_fail (self, "expected a string");
    out->ptr = (const char *) self->pos;
    out->len = len;
    self->pos += len;
    return FEDQ_OK;
}

fedq_rc_t
proto_reader_bin (proto_reader_t *self, const uint8_t **data, uint32_t *len)
{
    if (self->pos >= self->end)
        return s_fail_short (self, "truncated: expected a bin");
    uint8_t type = *self->pos;
    if (type < 0xC4 || type > 0xC6)
        return proto_reader_fail (self, "expected a bin");
    self->pos++;
    if (s_read_length (self, (size_t) 1 << (type - 0xC4), 1, len))
        return FEDQ_EPROTO;
    *data = self->pos;
    self->pos += *len;
    return FEDQ_OK;
}

//  Read any integer encoding: a non-negative value lands in *u (with
//  *negative false), a negative one in *s.
static fedq_rc_t
s_read_integer (proto_reader_t *self, bool *negative, uint64_t *u,
                int64_t *s)
{
    if (self->pos >= self->end)
        return s_fail_short (self, "truncated: expected an integer");
    uint8_t type = *self->pos;
    if (type <= 0x7F) {
        self->pos++;
        *negative = false;
        *u = type;
        return FEDQ_OK;
    }
    if (type >= 0xE0) {
        self->pos++;
        *negative = true;
        *s = (int8_t) type;
        return FEDQ_OK;
    }
    size_t width;
    switch (type) {
        case 0xCC: case 0xD0: width = 1; break;
        case 0xCD: case 0xD1: width = 2; break;
        case 0xCE: case 0xD2: width = 4; break;
        case 0xCF: case 0xD3: width = 8; break;
        default: return proto_reader_fail (self, "expected an integer");
    }
    if (proto_reader_left (self) < 1 + width)
        return s_fail_short (self, "truncated integer");
    const uint8_t *p = self->pos + 1;
    self->pos += 1 + width;
    uint64_t raw = width == 1   ? p[0]
                   : width == 2 ? s_load16 (p)
                   : width == 4 ? s_load32 (p)
                                : s_load64 (p);
    if (type >= 0xCC && type <= 0xCF) {
        *negative = false;
        *u = raw;
        return FEDQ_OK;
    }
    int64_t value = width == 1   ? (int8_t) raw
                    : width == 2 ? (int16_t) raw
                    : width == 4 ? (int32_t) raw
                                 : (int64_t) raw;
    *negative = value < 0;
    if (value < 0)
        *s = value;
    else
        *u = (uint64_t) value;
    return FEDQ_OK;
}

fedq_rc_t
proto_reader_uint (proto_reader_t *self, uint64_t *out)
{
    bool negative = false;
    uint64_t u = 0;
    int64_t s = 0;
    if (s_read_integer (self, &negative, &u, &s))
        return FEDQ_EPROTO;
    if (negative)
        return proto_reader_fail (self, "expected a non-negative integer");
    *out = u;
    return FEDQ_OK;
}

fedq_rc_t
proto_reader_int (proto_reader_t *self, int64_t *out)
{
    bool negative = false;
    uint64_t u = 0;
    int64_t s = 0;
    if (s_read_integer (self, &negative, &u, &s))
        return FEDQ_EPROTO;
    if (negative)
        *out = s;
    else if (u > (uint64_t) INT64_MAX)
        return proto_reader_fail (self, "integer out of range");
    else
        *out = (int64_t) u;
    return FEDQ_OK;
}

fedq_rc_t
proto_reader_bool (proto_reader_t *self, bool *out)
{
    if (self->pos >= self->end)
        return s_fail_short (self, "truncated: expected a bool");
    uint8_t type = *self->pos;
    if (type != 0xC2 && type != 0xC3)
        return proto_reader_fail (self, "expected a bool");
    self->pos++;
    *out = type == 0xC3;
    return FEDQ_OK;
}

//  Skip n bytes of payload.
static fedq_rc_t
s_skip_bytes (proto_reader_t *self, size_t n)
{
    if (proto_reader_left (self) < n)
        return s_fail_short (self, "declared length exceeds the data");
    self->pos += n;
    return FEDQ_OK;
}

fedq_rc_t
proto_reader_skip (proto_reader_t *self, int depth)
{
    if (self->pos >= self->end)
        return s_fail_short (self, "truncated: expected a value");
    uint8_t type = *self->pos;
    uint32_t count = 0;
    //  Scalars first: they never nest.
    if (type <= 0x7F || type >= 0xE0 || type == 0xC0 || type == 0xC2
        || type == 0xC3) {
        self->pos++;
        return FEDQ_OK;
    }
    if ((type & 0xE0) == 0xA0 || (type >= 0xD9 && type <= 0xDB)) {
        fedq_str_t ignored;
        return proto_reader_str (self, &ignored);
    }
    switch (type) {
        case 0xC4: case 0xC5: case 0xC6: {  //  bin 8/16/32
            self->pos++;
            size_t width = (size_t) 1 << (type - 0xC4);
            if (s_read_length (self, width, 1, &count))
                return FEDQ_EPROTO;
            return s_skip_bytes (self, count);
        }
        case 0xC7: case 0xC8: case 0xC9: {  //  ext 8/16/32: length, type
            self->pos++;
            size_t width = (size_t) 1 << (type - 0xC7);
            if (s_read_length (self, width, 1, &count))
                return FEDQ_EPROTO;
            return s_skip_bytes (self, (size_t) count + 1);
        }
        case 0xCA: self->pos++; return s_skip_bytes (self, 4);
        case 0xCB: self->pos++; return s_skip_bytes (self, 8);
        case 0xCC: case 0xD0: self->pos++; return s_skip_bytes (self, 1);
        case 0xCD: case 0xD1: self->pos++; return s_skip_bytes (self, 2);
        case 0xCE: case 0xD2: self->pos++; return s_skip_bytes (self, 4);
        case 0xCF: case 0xD3: self->pos++; return s_skip_bytes (self, 8);
        case 0xD4: self->pos++; return s_skip_bytes (self, 2);  //  fixext 1
        case 0xD5: self->pos++; return s_skip_bytes (self, 3);
        case 0xD6: self->pos++; return s_skip_bytes (self, 5);
        case 0xD7: self->pos++; return s_skip_bytes (self, 9);
        case 0xD8: self->pos++; return s_skip_bytes (self, 17);
        case 0xC1: return proto_reader_fail (self, "invalid msgpack type 0xc1");
        default: break;
    }
    //  Containers: each element takes at least one byte, and the counts
    //  were checked against the bytes left, so the work is bounded by the
    //  input size and the recursion by PROTO_MAX_DEPTH.
    if (depth > PROTO_MAX_DEPTH)
        return proto_reader_fail (self, "nesting deeper than the limit");
    bool is_map = (type & 0xF0) == 0x80 || type == 0xDE || type == 0xDF;
    if (is_map ? proto_reader_map (self, &count)
               : proto_reader_array (self, &count))
        return FEDQ_EPROTO;
    uint64_t items = is_map ? (uint64_t) count * 2 : count;
    for (uint64_t i = 0; i < items; i++)
        if (proto_reader_skip (self, depth + 1))
            return FEDQ_EPROTO;
    return FEDQ_OK;
}
