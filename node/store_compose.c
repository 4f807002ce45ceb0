//  node/store_compose.c — records composed from the store's primitives.
#include "store.h"

//  Settlements and marks in one record: a message record that names no
//  queue, so replay sees its settlements and marks and nothing to queue.
fedq_rc_t
store_append_settles_marks (store_t *self, const store_settle_t *settles,
                            size_t n, const store_mark_t *marks, size_t m)
{
    if (n > STORE_MAX_SETTLES || m > STORE_MAX_MARKS)
        return FEDQ_EINVAL;
    store_msg_t rec = {.nsettles = (uint32_t) n,
                       .settles = settles,
                       .nmarks = (uint32_t) m,
                       .marks = marks};
    store_pos_t pos;
    return store_append_msg (self, &rec, &pos);
}
