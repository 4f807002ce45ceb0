//  federation/fed_batch.c — the FED_EVENTS frame a stream is filling.
//  See fed_batch.h.
#include "fed_batch.h"

#include <stdlib.h>

struct _fed_batch_t {
    fedq_buf_t events;          //  the events part: one entry per event
    fedq_buf_t bodies;          //  the bodies part
    size_t count;               //  events in the parts
};

fed_batch_t *
fed_batch_new (void)
{
    fed_batch_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    return self;
}

void
fed_batch_destroy (fed_batch_t **self_p)
{
    fed_batch_t *self = *self_p;
    if (!self)
        return;
    fedq_buf_free (&self->events);
    fedq_buf_free (&self->bodies);
    free (self);
    *self_p = NULL;
}

size_t
fed_batch_size (fed_batch_t *self)
{
    return self->count;
}

bool
fed_batch_full (fed_batch_t *self, size_t env_len, size_t body_len)
{
    if (self->count == 0)
        return false;           //  one event always fits, whatever its size
    return self->count >= PROTO_FED_MAX_EVENTS
           || self->events.size + self->bodies.size + env_len + body_len
                > FED_BATCH_MAX_BYTES;
}

void
fed_batch_add (fed_batch_t *self, const proto_fed_event_t *event)
{
    proto_fed_event_encode (event, &self->events, &self->bodies);
    self->count++;
}

fedq_rc_t
fed_batch_send (fed_batch_t *self, proto_frame_t *frame, fed_send_fn *send,
                void *send_ctx)
{
    if (self->count == 0)
        return FEDQ_OK;
    frame->cmd = PROTO_FED_EVENTS;
    frame->present |= PF_COUNT;
    frame->count = self->count;
    fedq_rc_t rc = send (send_ctx, frame, self->events.data, self->events.size,
                         self->bodies.size ? self->bodies.data
                                           : (const uint8_t *) "",
                         self->bodies.size);
    if (rc)
        return rc;
    self->events.size = 0;
    self->bodies.size = 0;
    self->count = 0;
    return FEDQ_OK;
}
