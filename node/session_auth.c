//  node/session_auth.c — what sessions check when the node uses CURVE
//  (node/security.h): every frame comes from a connection that the ZAP
//  handler let in under a key NAME; the session records that NAME and
//  asks the authorized keys whether the NAME may send the frame (a
//  client-role key may not open links, a peer key only its own links and
//  federated queues, a revoked key nothing). Also the destination's check
//  of a shovel's body digest.
#define _GNU_SOURCE
#include "node_internal.h"
#include "security.h"

#include <stdio.h>
#include <string.h>

static bool
s_is_hello (uint32_t cmd)
{
    return cmd == PROTO_HELLO || cmd == PROTO_LINK_HELLO
           || cmd == PROTO_FED_HELLO;
}

bool
session_authorized (node_t *self, session_t *session,
                    const proto_frame_t *frame)
{
    const char *user = self->frame_user_id ? self->frame_user_id : "";
    char why[512];
    fedq_rc_t rc = FEDQ_OK;
    if (!session->user_id[0] && user[0]) {
        snprintf (session->user_id, sizeof session->user_id, "%s", user);
        session->auth_fingerprint = security_keys_fingerprint (
          security_keys (self->security), session->user_id);
    }
    if (strcmp (session->user_id, user) != 0) {
        //  One routing id, another key: never happens with libzmq's
        //  ROUTER (a connection keeps its id), so refuse outright.
        snprintf (why, sizeof why,
                  "this connection authenticated as \"%s\", the frame as "
                  "\"%s\"",
                  session->user_id, user);
        rc = FEDQ_EDENIED;
    }
    else
        rc = security_keys_authorize (security_keys (self->security),
                                      session->user_id, frame, why,
                                      sizeof why);
    if (rc == FEDQ_OK)
        return true;

    self->auth_refused++;
    bool hello = s_is_hello (frame->cmd);
    if (hello || !session->auth_told) {
        fedq_warn ("session=%s key=%s refused %s: %s", session->key,
                   session->user_id[0] ? session->user_id : "(none)",
                   proto_cmd_name ((int) frame->cmd), why);
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_EDENIED, "%s refused: %s",
                         proto_cmd_name ((int) frame->cmd), why);
        if (!hello)
            session->auth_told = true;
    }
    if (frame->cmd == PROTO_PUBLISH && (frame->present & PF_SEQ)) {
        proto_frame_t ret = {.version = PROTO_VERSION,
                             .cmd = PROTO_RETURN,
                             .present = PF_SEQ | PF_CODE | PF_TEXT,
                             .seq = frame->seq,
                             .code = FEDQ_EDENIED,
                             .text = fedq_str_of (why)};
        node_send (self, session->id, session->idlen, &ret, NULL, 0, NULL,
                   0);
    }
    //  A key that is no longer authorized ends its session (what it held
    //  goes back to its queues); the connection gets nothing more.
    if (!security_keys_fingerprint (security_keys (self->security),
                                    session->user_id))
        session->gone = true;
    return false;
}

void
session_auth_reload (node_t *self)
{
    security_keys_t *keys = security_keys (self->security);
    for (session_t *s = zhashx_first (self->sessions); s;
         s = zhashx_next (self->sessions)) {
        if (!s->user_id[0] || s->gone)
            continue;
        uint64_t now = security_keys_fingerprint (keys, s->user_id);
        if (now == s->auth_fingerprint)
            continue;
        fedq_warn ("session=%s key=%s ended: the key was %s by the reload",
                   s->key, s->user_id, now ? "changed" : "removed");
        s->gone = true;
    }
}

//  The value of the message header key, or an absent slice.
static fedq_str_t
s_header (const proto_msg_t *msg, const char *key)
{
    for (uint32_t i = 0; i < msg->nheaders; i++)
        if (fedq_str_eq (msg->headers[i].key, key))
            return msg->headers[i].value;
    return (fedq_str_t) {NULL, 0};
}

bool
session_digest_ok (node_t *self, const proto_frame_t *frame,
                   proto_msg_t *msg, zmq_msg_t *body)
{
    if (!(frame->present & PF_DIGEST))
        return true;
    const void *data = zmq_msg_data (body);
    size_t size = zmq_msg_size (body);
    fedq_str_t earlier = s_header (msg, "x-fedq-sha256");
    if (!security_sha256_check (data, size, frame->digest)
        || (earlier.ptr && !security_sha256_check (data, size, earlier))) {
        self->digest_mismatches++;
        return false;
    }
    if (!earlier.ptr && msg->nheaders < PROTO_MAX_HEADERS) {
        msg->headers[msg->nheaders].key = fedq_str_of ("x-fedq-sha256");
        msg->headers[msg->nheaders++].value = frame->digest;
    }
    return true;
}
