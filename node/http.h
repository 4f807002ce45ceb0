//  node/http.h — the node's HTTP endpoint (node.http, DESIGN.md §3):
//  GET /metrics (Prometheus text), /status (JSON), /healthz and / (the
//  live dashboard).
//
//  libmicrohttpd serves from its own thread. It never touches broker
//  state: the event loop publishes a status snapshot (a JSON string) with
//  http_update, and requests are answered from the last one. The snapshot
//  is the only thing shared, behind the only lock.
#ifndef HTTP_H_INCLUDED
#define HTTP_H_INCLUDED

#include <stdint.h>

typedef struct _http_t http_t;

//  Serve on address ("HOST:PORT", "[V6]:PORT"; "*:PORT" for every IPv4
//  interface; port 0 picks a free one). Binds that address only: a
//  loopback address stays loopback. NULL (cause logged) on failure.
http_t *
    http_new (const char *address, const char *node_id);

//  The same, serving HTTPS with the PEM certificate (chain) and private
//  key in these files (node.http_tls); plain HTTP when both are NULL.
http_t *
    http_new_tls (const char *address, const char *node_id,
                  const char *cert_file, const char *key_file);

//  Stop serving (waits for the server thread) and null *self_p; safe on
//  NULL.
void
    http_destroy (http_t **self_p);

//  Publish a new status snapshot (node_status_json); the string is
//  copied. No-op when self or status_json is NULL.
void
    http_update (http_t *self, const char *status_json);

//  The TCP port actually bound (useful with port 0).
uint16_t
    http_port (http_t *self);

//  /healthz answers 503 once the last snapshot is older than this.
#define HTTP_HEALTHZ_MAX_AGE_MS 5000

#endif
