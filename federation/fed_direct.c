//  federation/fed_direct.c — the origins a member receives straight from
//  themselves. See fed_direct.h.
#define _GNU_SOURCE
#include "fed_direct.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _fed_direct_t {
    uint32_t origins[FED_DIRECT_MAX];   //  broker_origin_id of each
    size_t count;
    uint64_t gen;               //  generation of the last notice taken
};

fed_direct_t *
fed_direct_new (void)
{
    fed_direct_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    return self;
}

void
fed_direct_destroy (fed_direct_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

bool
fed_direct_has (fed_direct_t *self, uint32_t origin)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->origins[i] == origin)
            return true;
    return false;
}

fedq_rc_t
fed_direct_update (fed_direct_t *self, broker_t *broker, uint64_t gen,
                   fedq_str_t json, fed_direct_mark_fn *fn, void *ctx,
                   bool *dropped)
{
    *dropped = false;
    if (gen <= self->gen)
        return FEDQ_OK;         //  older than what we have (another path)
    json_error_t err;
    json_t *obj = json.ptr ? json_loadb (json.ptr, json.len, 0, &err) : NULL;
    if (!json_is_object (obj) || json_object_size (obj) > FED_DIRECT_MAX) {
        json_decref (obj);
        return FEDQ_EPROTO;
    }
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        if (!json_is_integer (value) || json_integer_value (value) < 0
            || strlen (key) == 0 || strlen (key) > PROTO_MAX_NAME) {
            json_decref (obj);
            return FEDQ_EPROTO;
        }
    }
    uint32_t origins[FED_DIRECT_MAX];
    size_t count = 0;
    json_object_foreach (obj, key, value) {
        origins[count++] = broker_origin_id (broker, fedq_str_of (key));
        fn (ctx, fedq_str_of (key), (uint64_t) json_integer_value (value));
    }
    json_decref (obj);
    for (size_t i = 0; i < self->count && !*dropped; i++) {
        bool kept = false;
        for (size_t k = 0; k < count && !kept; k++)
            kept = origins[k] == self->origins[i];
        *dropped = !kept;
    }
    memcpy (self->origins, origins, count * sizeof origins[0]);
    self->count = count;
    self->gen = gen;
    return FEDQ_OK;
}

bool
fed_direct_clear (fed_direct_t *self)
{
    bool had = self->count > 0;
    self->count = 0;
    return had;
}

char *
fed_direct_notice (broker_t *broker, const char *prefix,
                   const char *const *origins, size_t n)
{
    json_t *obj = json_object ();
    for (size_t i = 0; i < n && i < FED_DIRECT_MAX; i++) {
        char key[2 * PROTO_MAX_NAME + 4];
        snprintf (key, sizeof key, "%s%s", prefix, origins[i]);
        json_object_set_new (
          obj, origins[i],
          json_integer ((json_int_t) store_mark_durable (broker_store (broker),
                                                         key)));
    }
    char *text = json_dumps (obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (obj);
    return text;
}
