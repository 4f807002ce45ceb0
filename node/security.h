//  node/security.h — CURVE on the node's endpoint and on its links
//  (DESIGN.md §4, docs/operations.md "Security"):
//
//  - security_keys_t (security_keys.c): the authorized-keys directory, one
//    NAME.pub per client or peer, each with a role (client | peer) and, for
//    peers, the links and federated queues it may drive;
//  - security_t (security.c): the node's key pair, its ROUTER as CURVE
//    server, and a ZAP handler (RFC 27) in its own thread that accepts the
//    keys of the directory and names each connection by its key NAME
//    (ZMQ "User-Id"), so sessions can check what a key may do;
//  - outgoing links (security_link.c): a shovel's or a federation link's
//    DEALER as CURVE client with the node's own key pair, and the SHA-256
//    body digest that a shovel with verify_digest carries (OpenSSL EVP).
//
//  Nothing here logs a secret key. Public keys are logged in Z85 text.
#ifndef SECURITY_H_INCLUDED
#define SECURITY_H_INCLUDED

#include "config.h"
#include "proto.h"

#define SECURITY_MAX_NAME 255           //  a key NAME (file name less .pub)
#define SECURITY_KEY_Z85 40             //  Z85 text of a 32-byte key
#define SECURITY_SHA256_HEX 65          //  64 hex digits and a NUL

typedef enum {
    SECURITY_ROLE_CLIENT = 0,   //  clients: publish, consume, declare, status
    SECURITY_ROLE_PEER = 1,     //  nodes: everything a client may, plus
                                //  shovel links and federation
} security_role_t;

//  --------------------------------------------------------------------
//  Authorized keys (security_keys.c)

typedef struct _security_keys_t security_keys_t;

//  Load every NAME.pub file of dir (czmq zcert public files; metadata
//  `role`, and for peers the optional `links`, `queues` and `node`).
//  A file that cannot be used is skipped with a warning that names it and
//  says what to fix. NULL (cause logged) only when dir cannot be read.
security_keys_t *
    security_keys_load (const char *dir);

//  A deep copy (for another thread).
security_keys_t *
    security_keys_copy (security_keys_t *self);

//  Destroy and null *self_p; safe on NULL.
void
    security_keys_destroy (security_keys_t **self_p);

//  Number of usable keys.
size_t
    security_keys_size (security_keys_t *self);

//  The NAME of the key whose public key is public_key (32 bytes), or
//  NULL when none is authorized.
const char *
    security_keys_name_of (security_keys_t *self, const uint8_t *public_key);

//  A fingerprint of everything the key NAME is allowed (its public key,
//  role, node, links, queues); 0 when NAME is not authorized. A reload
//  ends the sessions whose fingerprint changed.
uint64_t
    security_keys_fingerprint (security_keys_t *self, const char *name);

//  May the connection authenticated as NAME send frame? FEDQ_OK, or
//  FEDQ_EDENIED with the reason (for the peer and the log) in why:
//  - an unknown NAME (never authorized, or revoked) may send nothing;
//  - LINK_* and FED_* need role peer;
//  - LINK_HELLO needs the link in the key's `links` (when it has that
//    list) and FED_HELLO the queue in its `queues`; both must name the
//    node the key speaks for (`node`, by default NAME).
fedq_rc_t
    security_keys_authorize (security_keys_t *self, const char *name,
                             const proto_frame_t *frame, char *why,
                             size_t why_size);

//  --------------------------------------------------------------------
//  The node's side (security.c)

typedef struct _security_t security_t;

//  Set up CURVE for a node from node.security: load its key pair from
//  secret_key (the NAME.key of `fedq keygen`, which holds both keys),
//  load authorized_keys, and start the ZAP handler in zmq_ctx. Must run
//  before any CURVE socket of zmq_ctx binds. NULL (cause logged) on
//  failure.
security_t *
    security_new (void *zmq_ctx, const cfg_security_t *cfg);

//  Stop the ZAP handler (before zmq_ctx_term) and null *self_p; safe on
//  NULL.
void
    security_destroy (security_t **self_p);

//  Make router a CURVE server authenticated through the ZAP handler
//  (before it binds).
fedq_rc_t
    security_server (security_t *self, void *router);

//  Re-read the authorized-keys directory (cfg->authorized_keys); on
//  failure the running set stays and the cause is logged.
fedq_rc_t
    security_reload (security_t *self, const cfg_security_t *cfg);

//  The running set of authorized keys (borrowed; replaced by a reload).
security_keys_t *
    security_keys (security_t *self);

//  Connections the ZAP handler refused since start (unknown keys).
uint64_t
    security_handshakes_refused (security_t *self);

//  Warn, once per start, when cfg listens beyond loopback without CURVE.
void
    security_warn_insecure (const cfg_node_t *cfg);

//  --------------------------------------------------------------------
//  Outgoing links and digests (security_link.c)

//  Make sock (a DEALER, before it connects) a CURVE client of the server
//  whose public key is in server_key_file (its NAME.pub), using this
//  node's key pair (set by security_new). FEDQ_EINVAL with the reason in
//  why when the file cannot be used or the node has no key pair.
fedq_rc_t
    security_client (void *sock, const char *server_key_file, char *why,
                     size_t why_size);

//  Remember (copy) or, with NULLs, forget this node's key pair for
//  security_client. security_new and security_destroy call it; tests may.
void
    security_client_keys (const uint8_t *public_key,
                          const uint8_t *secret_key);

//  Load the 32-byte public key of a zcert file (NAME.pub or NAME.key)
//  into key. FEDQ_EINVAL with why when the file is missing or holds none.
fedq_rc_t
    security_load_public (const char *path, uint8_t *key, char *why,
                          size_t why_size);

//  SHA-256 of data as 64 lowercase hex digits and a NUL.
void
    security_sha256_hex (const void *data, size_t size,
                         char hex[SECURITY_SHA256_HEX]);

//  True when hex (64 hex digits, either case) is the SHA-256 of data.
bool
    security_sha256_check (const void *data, size_t size, fedq_str_t hex);

#endif
