//  config/config_equal.c — compare and look up parts of a configuration,
//  so that a reload can keep what did not change and touch only the rest.
//  Comparison walks the table of keys: a new key is compared for free.
#include "config_internal.h"

#include <string.h>

bool
cfg_equal (const cfg_t *a, const cfg_t *b)
{
    return cfg_struct_equal ("", a, b);
}

bool
cfg_node_equal (const cfg_node_t *a, const cfg_node_t *b)
{
    return cfg_struct_equal ("node", a, b);
}

bool
cfg_exchange_equal (const cfg_exchange_t *a, const cfg_exchange_t *b)
{
    return cfg_struct_equal ("exchanges[]", a, b);
}

bool
cfg_queue_equal (const cfg_queue_t *a, const cfg_queue_t *b)
{
    return cfg_struct_equal ("queues[]", a, b);
}

bool
cfg_binding_equal (const cfg_binding_t *a, const cfg_binding_t *b)
{
    return cfg_struct_equal ("bindings[]", a, b);
}

bool
cfg_shovel_equal (const cfg_shovel_t *a, const cfg_shovel_t *b)
{
    return cfg_struct_equal ("shovels[]", a, b);
}

bool
cfg_federated_equal (const cfg_federated_t *a, const cfg_federated_t *b)
{
    return cfg_struct_equal ("federated_queues[]", a, b);
}

const cfg_exchange_t *
cfg_find_exchange (const cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nexchanges; i++)
        if (cfg->exchanges[i].name && !strcmp (cfg->exchanges[i].name, name))
            return &cfg->exchanges[i];
    return NULL;
}

const cfg_queue_t *
cfg_find_queue (const cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nqueues; i++)
        if (cfg->queues[i].name && !strcmp (cfg->queues[i].name, name))
            return &cfg->queues[i];
    for (size_t i = 0; i < cfg->nfederated; i++)
        if (cfg->federated[i].queue.name
            && !strcmp (cfg->federated[i].queue.name, name))
            return &cfg->federated[i].queue;
    return NULL;
}

const cfg_shovel_t *
cfg_find_shovel (const cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nshovels; i++)
        if (cfg->shovels[i].name && !strcmp (cfg->shovels[i].name, name))
            return &cfg->shovels[i];
    return NULL;
}

const cfg_federated_t *
cfg_find_federated (const cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nfederated; i++)
        if (cfg->federated[i].queue.name
            && !strcmp (cfg->federated[i].queue.name, name))
            return &cfg->federated[i];
    return NULL;
}
