//  node/node_internal.h — what node.c (loop, config, status) and
//  session.c (client sessions) share. Not part of any public interface.
#ifndef NODE_INTERNAL_H_INCLUDED
#define NODE_INTERNAL_H_INCLUDED

#include "node.h"
#include <czmq.h>

#define NODE_BATCH_MAX 4096     //  frames handled per loop turn (one commit)
#define NODE_MAX_ID 256         //  ZeroMQ routing ids are at most 255 bytes

typedef struct _session_t session_t;

//  A delivery a session holds until it is settled.
typedef struct {
    uint64_t dtag;
    uint64_t qid;
    qentry_t entry;
    consumer_t *consumer;       //  NULL for GET, or after cancel
    bool settled;
} s_unacked_t;

struct _session_t {
    node_t *node;
    char key[2 * NODE_MAX_ID + 1];      //  hex of the routing id
    uint8_t id[NODE_MAX_ID];            //  routing id
    size_t idlen;
    int64_t last_seen;          //  mono ms of the last frame
    uint32_t heartbeat_ms;      //  from HELLO
    uint64_t last_seq;          //  highest PUBLISH seq received
    uint64_t batch_first_seq;   //  first PUBLISH seq of this loop turn
    bool confirm_due;           //  on the node's confirm list
    bool gone;                  //  peer unreachable; end at next turn
    bool hello;                 //  opened with HELLO or LINK_HELLO
    bool told;                  //  told once that it must say HELLO
    consumer_t **consumers;
    size_t nconsumers;
    s_unacked_t *unacked;       //  ring of held deliveries by dtag
    size_t un_head, un_count, un_cap;
    uint64_t next_dtag;
    uint64_t consumer_seq;      //  for generated consumer tags
    //  When the peer is a shovel link's sender (after LINK_HELLO).
    char link_key[2 * PROTO_MAX_NAME + 2];  //  "NODE/LINK", "" when none
    char link_name[PROTO_MAX_NAME + 1];
    char link_node[PROTO_MAX_NAME + 1];
    uint64_t link_epoch;
    struct _fed_t *fed;         //  federated queue a peer streams on
    struct _fed_stream_t *fed_stream;
    uint64_t reject_seq;        //  first refused seq of this turn, 0 = none
    int32_t reject_code;
    char reject_text[256];
    //  With CURVE (session_auth.c): who the connection authenticated as.
    char user_id[256];          //  key NAME (ZAP user id), "" without CURVE
    uint64_t auth_fingerprint;  //  of the key's rights when first seen
    bool auth_told;             //  told once that a frame was refused
};

struct _node_t {
    cfg_t *cfg;                 //  running configuration
    uint64_t config_generation; //  1 at start, +1 per successful reload
    int64_t config_loaded_at;   //  wall ms
    int64_t started_at;         //  mono ms
    broker_t *broker;
    void *zmq_ctx;
    void *router;               //  clients and peers (node.listen)
    int sigfd;                  //  signalfd for INT, TERM, HUP
    bool stopping;
    zhashx_t *sessions;         //  hex id -> session_t *
    session_t **confirm;        //  sessions with publishes this turn
    size_t nconfirm, confirm_cap;
    bool any_blocked;           //  a consumer could not take a delivery
    fedq_buf_t out;             //  scratch: encoded header
    fedq_buf_t env;             //  scratch: re-encoded envelope
    proto_msg_t scratch_msg;    //  scratch: decoded envelope
    int64_t next_tick;          //  mono ms
    struct _http_t *http;       //  node.http endpoint, NULL when disabled
    int64_t next_http;          //  mono ms of the next status snapshot
    struct _shovel_link_t **links;      //  shovels owned by this node
    size_t nlinks;
    struct _fed_t **feds;               //  federated queues of this node
    size_t nfeds;
    uint64_t frames_in;
    uint64_t bad_frames;        //  malformed input answered with an error
    struct _security_t *security;       //  CURVE and ZAP, NULL without
    const char *frame_user_id;  //  ZAP user id of the frame in hand
    uint64_t auth_refused;      //  frames refused by session_authorized
    uint64_t digest_mismatches; //  LINK_MSG bodies failing their digest
};

//  Send a command header (and optional envelope and body) to a peer.
//  FEDQ_EAGAIN when its pipe is full, FEDQ_ENOTFOUND when it is gone.
fedq_rc_t
    node_send (node_t *self, const uint8_t *id, size_t idlen,
               const proto_frame_t *frame, const uint8_t *env,
               size_t env_len, const uint8_t *body, size_t body_len);

//  Reply ERROR {rid, code, text} to a peer.
void
    node_send_error (node_t *self, const uint8_t *id, size_t idlen,
                     uint64_t rid, fedq_rc_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 6, 7)));

//  The node's status document (DESIGN.md §6); caller frees.
char *
    node_status_json (node_t *self);

//  Handle one frame from a client session (session.c).
void
    session_handle (node_t *self, const uint8_t *id, size_t idlen,
                    const proto_frame_t *frame, zmq_msg_t *env,
                    zmq_msg_t *body);

//  After a commit: confirm (ok) or return (failed) every session's
//  publishes of this turn.
void
    session_confirm_all (node_t *self, fedq_rc_t commit_rc);

//  End sessions silent for 3 heartbeats, and those found gone.
void
    session_reap (node_t *self, bool all);

//  A federated queue goes away: sessions streaming on it forget it.
void
    session_fed_closed (node_t *self, struct _fed_t *fed);

//  Clear consumers blocked on a full pipe so dispatch retries them.
void
    session_unblock_all (node_t *self);

//  With CURVE: may this session send frame (node->frame_user_id is the
//  key its connection authenticated with)? When not, the frame is
//  answered (ERROR EDENIED, RETURN for a PUBLISH), counted, and false
//  returned (session_auth.c).
bool
    session_authorized (node_t *self, session_t *session,
                        const proto_frame_t *frame);

//  After the authorized keys were reloaded: end the sessions whose key
//  was removed or whose rights changed.
void
    session_auth_reload (node_t *self);

//  LINK_MSG with a digest (shovel verify_digest): check the body against
//  it and against an x-fedq-sha256 header from an earlier hop, then add
//  that header to msg. False (counted) on a mismatch.
bool
    session_digest_ok (node_t *self, const proto_frame_t *frame,
                       proto_msg_t *msg, zmq_msg_t *body);

#endif
