//  node/security_link.c — what outgoing links need from security: a
//  shovel's or a federation link's DEALER as CURVE client with this
//  node's key pair, and the SHA-256 body digest that a shovel with
//  verify_digest sends along with each message (OpenSSL EVP).
//
//  The node's key pair is kept here (security_client_keys) because links
//  are created by the event loop from their own config entries, which
//  name only the server's public key file; only the loop's thread reads
//  or writes it.
#define _GNU_SOURCE
#include "security.h"

#include <czmq.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static uint8_t s_own_public[32];
static uint8_t s_own_secret[32];        //  never logged
static bool s_own_set;

void
security_client_keys (const uint8_t *public_key, const uint8_t *secret_key)
{
    if (public_key && secret_key) {
        memcpy (s_own_public, public_key, 32);
        memcpy (s_own_secret, secret_key, 32);
        s_own_set = true;
    }
    else {
        memset (s_own_public, 0, 32);
        memset (s_own_secret, 0, 32);
        s_own_set = false;
    }
}

fedq_rc_t
security_load_public (const char *path, uint8_t *key, char *why,
                      size_t why_size)
{
    zconfig_t *root = path ? zconfig_load (path) : NULL;
    if (!root) {
        snprintf (why, why_size,
                  "cannot read the server key %s: missing or not a key file "
                  "(expected the NAME.pub of the other node)",
                  path ? path : "(none)");
        return FEDQ_EINVAL;
    }
    const char *pub = zconfig_get (root, "/curve/public-key", NULL);
    fedq_rc_t rc = FEDQ_OK;
    if (!pub || strlen (pub) != SECURITY_KEY_Z85
        || !zmq_z85_decode (key, pub)) {
        snprintf (why, why_size,
                  "the server key %s holds no curve public-key of 40 Z85 "
                  "characters",
                  path);
        rc = FEDQ_EINVAL;
    }
    zconfig_destroy (&root);
    return rc;
}

fedq_rc_t
security_client (void *sock, const char *server_key_file, char *why,
                 size_t why_size)
{
    if (!s_own_set) {
        snprintf (why, why_size,
                  "server_key %s is set but this node has no key pair "
                  "(node.security.secret_key)",
                  server_key_file);
        return FEDQ_EINVAL;
    }
    uint8_t server[32];
    fedq_rc_t rc = security_load_public (server_key_file, server, why,
                                         why_size);
    if (rc)
        return rc;
    if (zmq_setsockopt (sock, ZMQ_CURVE_SERVERKEY, server, 32)
        || zmq_setsockopt (sock, ZMQ_CURVE_PUBLICKEY, s_own_public, 32)
        || zmq_setsockopt (sock, ZMQ_CURVE_SECRETKEY, s_own_secret, 32)) {
        snprintf (why, why_size, "cannot set CURVE keys: %s",
                  zmq_strerror (errno));
        return FEDQ_EINVAL;
    }
    return FEDQ_OK;
}

//  --------------------------------------------------------------------
//  Digests

void
security_sha256_hex (const void *data, size_t size,
                     char hex[SECURITY_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest (data, size, md, &len, EVP_sha256 (), NULL) || len != 32) {
        //  Cannot happen with a working libcrypto; an all-zero digest
        //  never matches a body, so the destination refuses rather than
        //  storing an unchecked message.
        memset (hex, '0', 64);
        hex[64] = 0;
        return;
    }
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = 0;
}

bool
security_sha256_check (const void *data, size_t size, fedq_str_t hex)
{
    if (hex.len != 64 || !hex.ptr)
        return false;
    char want[SECURITY_SHA256_HEX];
    security_sha256_hex (data, size, want);
    unsigned diff = 0;
    for (int i = 0; i < 64; i++) {
        char c = hex.ptr[i];
        if (c >= 'A' && c <= 'F')
            c = (char) (c - 'A' + 'a');
        diff |= (unsigned) (c ^ want[i]);
    }
    return diff == 0;
}
