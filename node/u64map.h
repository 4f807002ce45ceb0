//  node/u64map.h — an open-addressing hash map from non-zero uint64 keys
//  to uint64 values (queue ids, log positions). Linear probing with
//  backward-shift deletion: no tombstones, no per-entry allocation.
#ifndef U64MAP_H_INCLUDED
#define U64MAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *keys;             //  0 = empty slot
    uint64_t *values;
    size_t cap;                 //  power of two, or 0
    size_t count;
} u64map_t;

//  Set key (non-zero) to value.
void
    u64map_put (u64map_t *self, uint64_t key, uint64_t value);

//  True and *value when key is present.
bool
    u64map_get (const u64map_t *self, uint64_t key, uint64_t *value);

//  Remove key; true when it was present.
bool
    u64map_del (u64map_t *self, uint64_t key);

//  Free the storage (the map is empty and reusable after).
void
    u64map_free (u64map_t *self);

#endif
