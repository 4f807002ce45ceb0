//  node/exchange.h — an exchange and its bindings; routing by key
//  (DESIGN.md §1: direct, fanout, topic; the default exchange "" is the
//  broker's, routing to the queue named by the key).
#ifndef EXCHANGE_H_INCLUDED
#define EXCHANGE_H_INCLUDED

#include "queue.h"

typedef enum {
    EXCHANGE_DIRECT = 0,
    EXCHANGE_FANOUT = 1,
    EXCHANGE_TOPIC = 2,
} exchange_type_t;

typedef struct {
    queue_t *queue;             //  borrowed; the broker unbinds before deleting
    char *key;
} binding_t;

typedef struct {
    char *name;
    exchange_type_t type;
    bool from_config;           //  declared by the config file
    binding_t *bindings;
    size_t nbindings;
} exchange_t;

//  Parse "direct", "fanout" or "topic"; FEDQ_EINVAL otherwise.
fedq_rc_t
    exchange_type_parse (fedq_str_t text, exchange_type_t *type);

const char *
    exchange_type_name (exchange_type_t type);

exchange_t *
    exchange_new (const char *name, exchange_type_t type);

void
    exchange_destroy (exchange_t **self_p);

//  Add a binding; false when the same (queue, key) is already bound.
bool
    exchange_bind (exchange_t *self, queue_t *queue, const char *key);

//  Remove a binding; false when there was none.
bool
    exchange_unbind (exchange_t *self, queue_t *queue, const char *key);

//  Remove every binding to queue (queue deleted).
void
    exchange_unbind_queue (exchange_t *self, queue_t *queue);

//  Append to out (up to max, no repeats) the queues the key routes to;
//  returns the new count n.
size_t
    exchange_route (const exchange_t *self, fedq_str_t key, queue_t **out,
                    size_t n, size_t max);

//  True when a topic pattern ("a.*.c", "a.#") matches the key.
bool
    exchange_topic_match (const char *pattern, fedq_str_t key);

#endif
