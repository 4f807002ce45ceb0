//  proto/proto.h — the fedq wire protocol (docs/protocol.md): frame kinds,
//  the command header, the message envelope and their msgpack codecs,
//  shared by the node, the links and the client.
//
//  A ZeroMQ message is multipart:
//      part 0: command header, a msgpack map   (proto_frame_t)
//      part 1: message envelope, a msgpack map (proto_msg_t)  -- message
//      part 2: message body, raw bytes                         -- commands only
//  Commands that carry a message (PUBLISH, DELIVER, LINK_MSG) have all
//  three parts; every other command has only part 0.
#ifndef PROTO_H_INCLUDED
#define PROTO_H_INCLUDED

#include "fedq.h"

#define PROTO_VERSION 1
//  Hard caps that every decoder enforces before it allocates.
#define PROTO_MAX_FRAME (64u * 1024)        //  header or envelope bytes
#define PROTO_MAX_DEPTH 8                   //  msgpack nesting
#define PROTO_MAX_HEADERS 64                //  message headers
#define PROTO_MAX_PATH 32                   //  provenance entries
#define PROTO_MAX_NAME 255                  //  queue, exchange, node, link names
#define PROTO_MAX_STATUS (4u * 1024 * 1024) //  a STATUS_OK header (its json)

typedef enum {
    //  client <-> node
    PROTO_HELLO = 1,            //  C: open a session; S: HELLO_OK
    PROTO_HELLO_OK = 2,
    PROTO_OK = 3,               //  generic success reply to a request (rid)
    PROTO_ERROR = 4,            //  error reply to a request (rid, code, text)
    PROTO_DECLARE_QUEUE = 5,
    PROTO_DELETE_QUEUE = 6,
    PROTO_PURGE_QUEUE = 7,
    PROTO_DECLARE_EXCHANGE = 8,
    PROTO_DELETE_EXCHANGE = 9,
    PROTO_BIND = 10,
    PROTO_UNBIND = 11,
    PROTO_PUBLISH = 12,         //  + envelope + body; seq numbers the publish
    PROTO_CONFIRM = 13,         //  S: every publish with seq <= upto is settled
    PROTO_RETURN = 14,          //  S: publish seq not stored (code, text)
    PROTO_CONSUME = 15,
    PROTO_CANCEL = 16,
    PROTO_DELIVER = 17,         //  + envelope + body
    PROTO_GET = 18,             //  reply: DELIVER with rid, or GET_EMPTY
    PROTO_GET_EMPTY = 19,
    PROTO_ACK = 20,
    PROTO_NACK = 21,            //  requeue
    PROTO_REJECT = 22,          //  dead-letter
    PROTO_STATUS = 23,          //  reply: STATUS_OK with json
    PROTO_STATUS_OK = 24,
    PROTO_PING = 25,
    PROTO_PONG = 26,
    PROTO_BYE = 27,             //  C: closing; node requeues unacked deliveries
    //  node <-> node (shovel links)
    PROTO_LINK_HELLO = 40,      //  link, epoch, node
    PROTO_LINK_WELCOME = 41,    //  link, epoch, upto = stored high-water mark
    PROTO_LINK_MSG = 42,        //  link, epoch, seq + envelope + body
    PROTO_LINK_CONFIRM = 43,    //  link, epoch, upto
    PROTO_LINK_REJECT = 44,     //  link, epoch, seq, code, text
    PROTO_LINK_SKIP = 45,       //  link, epoch, seq: advance the mark to seq
                                //  without storing (dead-lettered at source)
    //  node <-> node (federated queues)
    PROTO_FED_HELLO = 60,
    PROTO_FED_SYNC = 61,
    PROTO_FED_EVENT = 62,
    PROTO_FED_ACK = 63,
    PROTO_FED_RESYNC = 64,      //  q, epoch, json = floors: a resync ends
    PROTO_FED_KEEP = 65,        //  q, epoch, node, json = live seqs
    PROTO_FED_EVENTS = 66,      //  q, epoch, count + events part + bodies
    PROTO_FED_DIRECT = 67,      //  q, epoch, seq (generation), json
    PROTO_CMD_MAX = 68
} proto_cmd_t;

//  Name of a command ("PUBLISH"), or "UNKNOWN".
const char *
    proto_cmd_name (int cmd);

//  <sys/socket.h> (pulled in by zmq, czmq and msgpack) defines PF_KEY, a
//  socket family fedq never uses, as a macro. Include it here and drop the
//  macro, so PF_KEY is the field bit below whatever the include order.
#include <sys/socket.h>
#undef PF_KEY

//  Which optional fields of proto_frame_t are present (bit per field).
enum {
    PF_RID = 1u << 0,
    PF_NAME = 1u << 1,
    PF_TYPE = 1u << 2,
    PF_EXCHANGE = 1u << 3,
    PF_QUEUE = 1u << 4,
    PF_KEY = 1u << 5,
    PF_SEQ = 1u << 6,
    PF_UPTO = 1u << 7,
    PF_TAG = 1u << 8,
    PF_DTAG = 1u << 9,
    PF_PREFETCH = 1u << 10,
    PF_CODE = 1u << 11,
    PF_TEXT = 1u << 12,
    PF_LINK = 1u << 13,
    PF_EPOCH = 1u << 14,
    PF_NODE = 1u << 15,
    PF_JSON = 1u << 16,
    PF_COUNT = 1u << 17,
    PF_QOPTS = 1u << 18,
    PF_HEARTBEAT = 1u << 19,
    PF_DIGEST = 1u << 20,
};

//  Flags carried in proto_frame_t.flags (a msgpack bool each on the wire).
enum {
    PFL_MULTIPLE = 1u << 0,     //  ACK/NACK: every dtag up to this one
    PFL_REQUEUE = 1u << 1,      //  NACK: put back (default true)
    PFL_NO_ACK = 1u << 2,       //  CONSUME/GET: settled on delivery
    PFL_MANDATORY = 1u << 3,    //  PUBLISH: return when unroutable (default)
    PFL_IF_UNUSED = 1u << 4,    //  DELETE_QUEUE
    PFL_PASSIVE = 1u << 5,      //  DECLARE_*: only check existence
    PFL_BATCH = 1u << 6,        //  FED_HELLO: the sender takes FED_EVENTS
                                //  and FED_DIRECT
    PFL_LISTED = 1u << 7,       //  FED_DIRECT: the receiver is in the
                                //  sender's peers (it keeps history for it)
};

//  Queue options (DESIGN.md §1), as declared by a client.
typedef struct {
    bool durable;
    bool auto_delete;
    bool single_active_consumer;
    uint8_t max_priority;       //  0 = none, up to 9
    uint8_t overflow;           //  0 = drop-head, 1 = reject-publish
    uint64_t max_length;        //  0 = unlimited
    uint64_t max_bytes;         //  0 = unlimited
    uint64_t message_ttl_ms;    //  0 = none
    uint64_t dedup_window_ms;   //  0 = off
    fedq_str_t dead_letter_exchange;
    fedq_str_t dead_letter_routing_key;
} proto_qopts_t;

#define PROTO_OVERFLOW_DROP_HEAD 0
#define PROTO_OVERFLOW_REJECT 1

//  A decoded command header. Strings point into the decoded buffer, which
//  must outlive the frame.
typedef struct {
    uint32_t version;           //  PROTO_VERSION
    uint32_t cmd;               //  proto_cmd_t
    uint32_t present;           //  PF_* bits
    uint32_t flags;             //  PFL_* bits
    uint64_t rid;               //  request id, echoed in the reply
    fedq_str_t name;            //  queue or exchange name (declare, delete)
    fedq_str_t type;            //  exchange type: direct fanout topic
    fedq_str_t exchange;
    fedq_str_t queue;
    fedq_str_t key;             //  routing or binding key
    uint64_t seq;               //  publish sequence, link sequence
    uint64_t upto;              //  cumulative confirm / high-water mark
    fedq_str_t tag;             //  consumer tag
    uint64_t dtag;              //  delivery tag
    uint32_t prefetch;          //  consumer credit
    int32_t code;               //  fedq_rc_t of an ERROR/RETURN/LINK_REJECT
    fedq_str_t text;            //  human text of an error
    fedq_str_t link;            //  link name
    uint64_t epoch;             //  link epoch
    fedq_str_t node;            //  sending node id
    fedq_str_t json;            //  STATUS_OK payload
    uint64_t count;             //  message count (declare reply, purge)
    proto_qopts_t qopts;        //  DECLARE_QUEUE options (PF_QOPTS)
    uint32_t heartbeat_ms;      //  HELLO: client pings at least this often
    fedq_str_t digest;          //  LINK_MSG: SHA-256 of the body, 64 hex
                                //  digits (shovel verify_digest)
} proto_frame_t;

typedef struct {
    fedq_str_t key;
    fedq_str_t value;
} proto_header_t;

//  The message envelope: everything about a message except its body.
typedef struct {
    fedq_str_t origin;          //  node where first published ("" from client)
    uint64_t seq;               //  sequence at origin (0 from client)
    fedq_str_t message_id;      //  publisher's id, for dedup_window
    fedq_str_t exchange;        //  exchange it was published to
    fedq_str_t routing_key;
    int64_t published_at;       //  ms since epoch at origin
    uint64_t ttl_ms;            //  per-message TTL, 0 = none
    uint8_t priority;           //  0..9
    bool redelivered;           //  set on DELIVER only
    uint32_t nheaders;
    proto_header_t headers[PROTO_MAX_HEADERS];
    uint32_t npath;             //  provenance: node ids crossed, oldest first
    fedq_str_t path[PROTO_MAX_PATH];
} proto_msg_t;

//  Encode a command header; appends to out. Only fields flagged in
//  `present` are written, and the flags as bools.
void
    proto_frame_encode (const proto_frame_t *frame, fedq_buf_t *out);

//  Decode a command header from data (borrowed: the frame's strings point
//  into it). FEDQ_EPROTO with *error set to a static description on any
//  malformed input, oversize, excess nesting or unknown version. Never
//  allocates.
//  On failure the frame still holds what could be read: when the request
//  id was readable, PF_RID is set and frame->rid holds it, so the node can
//  answer ERROR with that rid; frame->version holds the peer's version
//  when it was readable. The unsupported-version text ("unsupported
//  protocol version N; this node speaks 1") is formatted per thread and
//  stays valid until the next decode or check on the same thread.
fedq_rc_t
    proto_frame_decode (const uint8_t *data, size_t size,
                        proto_frame_t *frame, const char **error);

//  Check a decoded header against its command: the command is known and
//  every field the command requires (docs/protocol.md) is present.
//  FEDQ_EPROTO with *error set (valid until the next decode or check on
//  the same thread) otherwise.
fedq_rc_t
    proto_frame_check (const proto_frame_t *frame, const char **error);

//  PF_* bits a command requires (docs/protocol.md), 0 for none or unknown.
uint32_t
    proto_cmd_required (int cmd);

//  One event of a FED_EVENTS frame (docs/protocol.md §10.1): an entry of
//  its events part, its body a slice of the bodies part.
typedef struct {
    uint64_t count;             //  index in the sender's history
    fedq_str_t origin;          //  global id: origin node and sequence
    uint64_t seq;
    const uint8_t *env;         //  the envelope as stored
    uint32_t env_len;
    const uint8_t *body;
    uint32_t body_len;
} proto_fed_event_t;

#define PROTO_FED_MAX_EVENTS 1024   //  events in one FED_EVENTS frame

//  Append an event: its entry to events, its body to bodies.
void
    proto_fed_event_encode (const proto_fed_event_t *event,
                            fedq_buf_t *events, fedq_buf_t *bodies);

//  Decode the n events of a FED_EVENTS frame into out (room for max).
//  Checks the whole frame before it returns: n <= max, exactly n entries
//  filling the events part, each well formed with an envelope of at most
//  PROTO_MAX_FRAME bytes, and body lengths that add up to the bodies
//  part. FEDQ_EPROTO with *error set (static text) otherwise. The events
//  point into the parts. Never allocates.
fedq_rc_t
    proto_fed_events_decode (const uint8_t *events, size_t events_len,
                             const uint8_t *bodies, size_t bodies_len,
                             uint64_t n, proto_fed_event_t *out, size_t max,
                             const char **error);

//  Encode an envelope; appends to out.
void
    proto_msg_encode (const proto_msg_t *msg, fedq_buf_t *out);

//  Decode an envelope, same rules as proto_frame_decode.
fedq_rc_t
    proto_msg_decode (const uint8_t *data, size_t size, proto_msg_t *msg,
                      const char **error);

#endif
