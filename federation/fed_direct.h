//  federation/fed_direct.h — the origins a member receives straight from
//  themselves (FED_DIRECT, docs/protocol.md §10.3). In a mesh every
//  member would otherwise relay to each peer what that peer also gets
//  from the origin: a member tells each peer which origins it has a
//  running link to, with its mark for each; the peer skips those origins'
//  events on its stream to the member while a notice lists them, and
//  goes back to where it skipped (fed.c) once a newer notice does not.
#ifndef FED_DIRECT_H_INCLUDED
#define FED_DIRECT_H_INCLUDED

#include "fed.h"

#define FED_DIRECT_MAX 64       //  origins one notice may list

typedef struct _fed_direct_t fed_direct_t;

fed_direct_t *
    fed_direct_new (void);

void
    fed_direct_destroy (fed_direct_t **self_p);

//  True when the member gets this origin (broker_origin_id) directly.
bool
    fed_direct_has (fed_direct_t *self, uint32_t origin);

//  What the member holds of an origin: its mark, durable there.
typedef void (fed_direct_mark_fn) (void *ctx, fedq_str_t origin,
                                   uint64_t mark);

//  Take a notice of generation gen, json {"ORIGIN": mark, ...}. A
//  generation not above the last one taken changes nothing. Each listed
//  origin and mark goes to fn; *dropped is set when an origin of the set
//  is not in the new one. FEDQ_EPROTO (nothing changed) on bad json.
fedq_rc_t
    fed_direct_update (fed_direct_t *self, broker_t *broker, uint64_t gen,
                       fedq_str_t json, fed_direct_mark_fn *fn, void *ctx,
                       bool *dropped);

//  Forget the set (the member opened a new stream and says it again);
//  true when it was not empty.
bool
    fed_direct_clear (fed_direct_t *self);

//  This node's notice: each of the n origins with the node's mark for it
//  (store mark PREFIX + origin), as JSON text; the caller frees it.
char *
    fed_direct_notice (broker_t *broker, const char *prefix,
                       const char *const *origins, size_t n);

#endif
