//  proto/proto_fed.c — the events part of FED_EVENTS (docs/protocol.md
//  §10.1): one msgpack array per event, [count, origin, seq, envelope,
//  body length], back to back; the bodies follow in their own part, in
//  the same order, so the receiver applies each body in place.
#include "proto_wire.h"

#include <assert.h>

void
proto_fed_event_encode (const proto_fed_event_t *event, fedq_buf_t *events,
                        fedq_buf_t *bodies)
{
    assert (event && events && bodies);
    msgpack_packer pk;
    proto_packer_init (&pk, events);
    fedq_buf_reserve (events, 48 + (size_t) event->origin.len
                                + event->env_len);
    msgpack_pack_array (&pk, 5);
    msgpack_pack_uint64 (&pk, event->count);
    proto_pack_str (&pk, event->origin);
    msgpack_pack_uint64 (&pk, event->seq);
    msgpack_pack_bin (&pk, event->env_len);
    if (event->env_len)
        msgpack_pack_bin_body (&pk, event->env, event->env_len);
    msgpack_pack_uint32 (&pk, event->body_len);
    if (event->body_len)
        fedq_buf_append (bodies, event->body, event->body_len);
}

fedq_rc_t
proto_fed_events_decode (const uint8_t *events, size_t events_len,
                         const uint8_t *bodies, size_t bodies_len, uint64_t n,
                         proto_fed_event_t *out, size_t max,
                         const char **error)
{
    const char *why = NULL;
    proto_reader_t r;
    proto_reader_init (&r, events, events_len);
    //  Each entry takes at least 6 bytes: a count beyond that is a lie.
    if (n == 0 || n > max || n > events_len / 6) {
        why = "FED_EVENTS: count is 0, above the limit, or beyond the data";
        goto fail;
    }
    size_t body_off = 0;
    for (uint64_t i = 0; i < n; i++) {
        proto_fed_event_t *e = &out[i];
        uint32_t items = 0;
        uint64_t body_len = 0;
        if (proto_reader_array (&r, &items) || items != 5
            || proto_reader_uint (&r, &e->count)
            || proto_reader_str (&r, &e->origin)
            || proto_reader_uint (&r, &e->seq)
            || proto_reader_bin (&r, &e->env, &e->env_len)
            || proto_reader_uint (&r, &body_len)) {
            why = r.error ? r.error : "FED_EVENTS: an entry is not "
                                      "[count, origin, seq, envelope, "
                                      "body length]";
            goto fail;
        }
        if (e->origin.len == 0 || e->origin.len > PROTO_MAX_NAME
            || e->seq == 0 || e->env_len == 0
            || e->env_len > PROTO_MAX_FRAME) {
            why = "FED_EVENTS: an entry has an empty or oversized origin or "
                  "envelope, or sequence 0";
            goto fail;
        }
        if (body_len > UINT32_MAX || body_len > bodies_len - body_off) {
            why = "FED_EVENTS: body lengths exceed the bodies part";
            goto fail;
        }
        e->body = bodies ? bodies + body_off : (const uint8_t *) "";
        e->body_len = (uint32_t) body_len;
        body_off += body_len;
    }
    if (proto_reader_left (&r) != 0 || body_off != bodies_len) {
        why = "FED_EVENTS: bytes left over after the last event";
        goto fail;
    }
    return FEDQ_OK;
fail:
    if (error)
        *error = why;
    return FEDQ_EPROTO;
}
