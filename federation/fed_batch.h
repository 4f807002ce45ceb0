//  federation/fed_batch.h — the FED_EVENTS frame a stream is filling
//  (docs/protocol.md §10.1). A stream adds the events it sends in one
//  pump and sends them as one frame when the frame is full and at the end
//  of the pump, so a busy stream moves hundreds of events per ZeroMQ
//  message and an idle one sends each event at once (never on a timer).
#ifndef FED_BATCH_H_INCLUDED
#define FED_BATCH_H_INCLUDED

#include "fed.h"

//  Bytes of envelopes and bodies in one frame, beyond its first event.
//  A node's endpoint takes parts of up to 2 x max_message_bytes + 128 KiB
//  (ZMQ_MAXMSGSIZE, node.c) and drops the connection of a peer that
//  sends more, so a frame stays under 128 KiB whatever the receiver's
//  max_message_bytes (an event bigger than that goes alone, as before).
#define FED_BATCH_MAX_BYTES (112u * 1024)

typedef struct _fed_batch_t fed_batch_t;

fed_batch_t *
    fed_batch_new (void);

void
    fed_batch_destroy (fed_batch_t **self_p);

//  Events waiting to be sent (0 when empty).
size_t
    fed_batch_size (fed_batch_t *self);

//  True when an event of these sizes does not fit: send the batch first.
bool
    fed_batch_full (fed_batch_t *self, size_t env_len, size_t body_len);

//  Add an event (copied).
void
    fed_batch_add (fed_batch_t *self, const proto_fed_event_t *event);

//  Send the events as one FED_EVENTS frame, header from frame (q, epoch;
//  count is set here). FEDQ_OK empties the batch; FEDQ_EAGAIN (pipe full)
//  keeps it whole, to be sent before anything else.
fedq_rc_t
    fed_batch_send (fed_batch_t *self, proto_frame_t *frame,
                    fed_send_fn *send, void *send_ctx);

#endif
