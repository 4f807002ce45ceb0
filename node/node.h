//  node/node.h — the fedq-node daemon: one event loop that owns the
//  broker, the client sessions on the ROUTER endpoint and the links.
#ifndef NODE_H_INCLUDED
#define NODE_H_INCLUDED

#include "broker.h"
#include "config.h"

typedef struct _node_t node_t;

//  Create a node from a validated config (taken over: *cfg_p is nulled):
//  open the broker (recovering the log), apply the declarations of the
//  config and bind the endpoints. NULL (cause logged) on failure.
node_t *
    node_new (cfg_t **cfg_p);

void
    node_destroy (node_t **self_p);

//  Run the event loop until SIGINT or SIGTERM. Returns 0 on a clean stop.
int
    node_run (node_t *self);

#endif
