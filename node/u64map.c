//  node/u64map.c — uint64 -> uint64 hash map.
#define _GNU_SOURCE
#include "u64map.h"

#include "fedq.h"
#include <stdlib.h>

static size_t
s_slot (uint64_t key, size_t cap)
{
    //  Fibonacci hashing spreads sequential ids and positions.
    return (size_t) ((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static void
s_grow (u64map_t *self)
{
    size_t cap = self->cap ? self->cap * 2 : 64;
    uint64_t *keys = calloc (cap, sizeof *keys);
    uint64_t *values = calloc (cap, sizeof *values);
    if (!keys || !values) {
        fedq_error ("out of memory growing a map to %zu slots", cap);
        abort ();
    }
    for (size_t i = 0; i < self->cap; i++)
        if (self->keys[i]) {
            size_t s = s_slot (self->keys[i], cap);
            while (keys[s])
                s = (s + 1) & (cap - 1);
            keys[s] = self->keys[i];
            values[s] = self->values[i];
        }
    free (self->keys);
    free (self->values);
    self->keys = keys;
    self->values = values;
    self->cap = cap;
}

void
u64map_put (u64map_t *self, uint64_t key, uint64_t value)
{
    if ((self->count + 1) * 4 > self->cap * 3)
        s_grow (self);
    size_t s = s_slot (key, self->cap);
    while (self->keys[s] && self->keys[s] != key)
        s = (s + 1) & (self->cap - 1);
    if (!self->keys[s])
        self->count++;
    self->keys[s] = key;
    self->values[s] = value;
}

bool
u64map_get (const u64map_t *self, uint64_t key, uint64_t *value)
{
    if (!self->cap)
        return false;
    size_t s = s_slot (key, self->cap);
    while (self->keys[s]) {
        if (self->keys[s] == key) {
            if (value)
                *value = self->values[s];
            return true;
        }
        s = (s + 1) & (self->cap - 1);
    }
    return false;
}

bool
u64map_del (u64map_t *self, uint64_t key)
{
    if (!self->cap)
        return false;
    size_t mask = self->cap - 1;
    size_t s = s_slot (key, self->cap);
    while (self->keys[s] != key) {
        if (!self->keys[s])
            return false;
        s = (s + 1) & mask;
    }
    //  Shift later entries of the probe run back into the hole.
    size_t hole = s;
    size_t next = (s + 1) & mask;
    while (self->keys[next]) {
        size_t home = s_slot (self->keys[next], self->cap);
        bool movable = (next > hole) ? (home <= hole || home > next)
                                     : (home <= hole && home > next);
        if (movable) {
            self->keys[hole] = self->keys[next];
            self->values[hole] = self->values[next];
            hole = next;
        }
        next = (next + 1) & mask;
    }
    self->keys[hole] = 0;
    self->count--;
    return true;
}

void
u64map_free (u64map_t *self)
{
    free (self->keys);
    free (self->values);
    self->keys = self->values = NULL;
    self->cap = self->count = 0;
}
