//  node/store_format.c — encode and decode the durable log's records.
//
//  Writers fill a buffer the caller reserved; readers check every count
//  and length against the payload length before pointing into it, so a
//  record whose CRC happens to match but whose fields disagree is refused,
//  never read past.
#include "store_format.h"

#include <string.h>

_Static_assert (sizeof (store_settle_t) == 16, "settles are mapped as-is");

static inline void
s_put16 (uint8_t *p, uint16_t v)
{
    memcpy (p, &v, 2);
}

static inline void
s_put32 (uint8_t *p, uint32_t v)
{
    memcpy (p, &v, 4);
}

static inline void
s_put64 (uint8_t *p, uint64_t v)
{
    memcpy (p, &v, 8);
}

static inline uint16_t
s_get16 (const uint8_t *p)
{
    uint16_t v;
    memcpy (&v, p, 2);
    return v;
}

static inline uint32_t
s_get32 (const uint8_t *p)
{
    uint32_t v;
    memcpy (&v, p, 4);
    return v;
}

static inline uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v;
    memcpy (&v, p, 8);
    return v;
}

static void
s_header (uint8_t *out, uint64_t len, uint8_t type)
{
    s_put32 (out, 0);
    s_put32 (out + 4, (uint32_t) len);
    out[8] = type;
}

void
store_fmt_seal (uint8_t *out, uint64_t len)
{
    uint64_t end = STORE_REC_HEADER + len;
    uint64_t ext = store_rec_extent (len);
    memset (out + end, 0, ext - end);
    s_put32 (out, fedq_crc32c (0, out + 4, (size_t) (end - 4)));
}

uint64_t
store_fmt_msg_len (const store_msg_t *msg)
{
    if (msg->nqueues > STORE_MAX_QUEUES || msg->nmarks > STORE_MAX_MARKS
        || msg->nsettles > STORE_MAX_SETTLES
        || msg->origin.len > STORE_MAX_STR
        || msg->message_id.len > STORE_MAX_STR)
        return 0;
    uint64_t len = STORE_MSG_FIXED - STORE_REC_HEADER;
    len += 8 * (uint64_t) msg->nqueues + 16 * (uint64_t) msg->nsettles;
    for (uint32_t i = 0; i < msg->nmarks; i++) {
        uint32_t key_len = msg->marks[i].key.len;
        if (key_len == 0 || key_len > STORE_MAX_KEY)
            return 0;
        len += 10 + key_len;
    }
    len += msg->origin.len + msg->message_id.len;
    len += (uint64_t) msg->env_len + msg->body_len;
    return len;
}

void
store_fmt_msg_write (uint8_t *out, uint64_t len, const store_msg_t *msg)
{
    s_header (out, len, STORE_REC_MSG);
    out[9] = msg->priority;
    out[10] = (uint8_t) msg->nmarks;
    out[11] = 0;
    s_put16 (out + 12, (uint16_t) msg->nqueues);
    s_put16 (out + 14, (uint16_t) msg->nsettles);
    s_put64 (out + 16, msg->seq);
    s_put64 (out + 24, (uint64_t) msg->published_at);
    s_put64 (out + 32, (uint64_t) msg->expires_at);
    s_put32 (out + 40, msg->env_len);
    s_put32 (out + 44, msg->body_len);
    s_put16 (out + 48, (uint16_t) msg->origin.len);
    s_put16 (out + 50, (uint16_t) msg->message_id.len);
    s_put32 (out + 52, 0);
    uint8_t *p = out + STORE_MSG_FIXED;
    if (msg->nqueues)
        memcpy (p, msg->qids, 8 * (size_t) msg->nqueues);
    p += 8 * (size_t) msg->nqueues;
    if (msg->nsettles)
        memcpy (p, msg->settles, 16 * (size_t) msg->nsettles);
    p += 16 * (size_t) msg->nsettles;
    for (uint32_t i = 0; i < msg->nmarks; i++)
        s_put64 (p + 8 * i, msg->marks[i].value);
    p += 8 * (size_t) msg->nmarks;
    for (uint32_t i = 0; i < msg->nmarks; i++)
        s_put16 (p + 2 * i, (uint16_t) msg->marks[i].key.len);
    p += 2 * (size_t) msg->nmarks;
    if (msg->origin.len)
        memcpy (p, msg->origin.ptr, msg->origin.len);
    p += msg->origin.len;
    if (msg->message_id.len)
        memcpy (p, msg->message_id.ptr, msg->message_id.len);
    p += msg->message_id.len;
    for (uint32_t i = 0; i < msg->nmarks; i++) {
        memcpy (p, msg->marks[i].key.ptr, msg->marks[i].key.len);
        p += msg->marks[i].key.len;
    }
    if (msg->env_len)
        memcpy (p, msg->env, msg->env_len);
    p += msg->env_len;
    if (msg->body_len)
        memcpy (p, msg->body, msg->body_len);
    store_fmt_seal (out, len);
}

uint64_t
store_fmt_settle_len (size_t n)
{
    return STORE_SETTLE_FIXED - STORE_REC_HEADER + 16 * (uint64_t) n;
}

void
store_fmt_settle_write (uint8_t *out, uint64_t len,
                        const store_settle_t *settles, size_t n)
{
    s_header (out, len, STORE_REC_SETTLE);
    memset (out + 9, 0, 3);
    s_put32 (out + 12, (uint32_t) n);
    memcpy (out + STORE_SETTLE_FIXED, settles, 16 * n);
    store_fmt_seal (out, len);
}

uint64_t
store_fmt_marks_len (size_t n, uint64_t key_bytes, bool ckpt)
{
    uint64_t fixed = ckpt ? STORE_CKPT_FIXED : STORE_MARKS_FIXED;
    return fixed - STORE_REC_HEADER + 10 * (uint64_t) n + key_bytes;
}

void
store_fmt_marks_begin (uint8_t *out, uint64_t len, size_t n, bool ckpt,
                       uint32_t segno)
{
    s_header (out, len, ckpt ? STORE_REC_CHECKPOINT : STORE_REC_MARKS);
    memset (out + 9, 0, 3);
    if (ckpt) {
        s_put32 (out + 12, STORE_FORMAT_MAGIC);
        s_put32 (out + 16, STORE_FORMAT_VERSION);
        s_put32 (out + 20, segno);
        s_put32 (out + 24, (uint32_t) n);
        s_put32 (out + 28, 0);
    }
    else
        s_put32 (out + 12, (uint32_t) n);
}

void
store_fmt_marks_put (uint8_t *out, size_t n, size_t i, bool ckpt,
                     const char *key, uint32_t key_len, uint64_t value,
                     uint64_t *key_off)
{
    uint8_t *values = out + (ckpt ? STORE_CKPT_FIXED : STORE_MARKS_FIXED);
    s_put64 (values + 8 * i, value);
    s_put16 (values + 8 * n + 2 * i, (uint16_t) key_len);
    if (*key_off == 0)
        *key_off = (uint64_t) (values - out) + 10 * (uint64_t) n;
    memcpy (out + *key_off, key, key_len);
    *key_off += key_len;
}

store_check_t
store_fmt_bounds (const uint8_t *data, uint64_t size, uint64_t off,
                  uint8_t *type, uint32_t *len)
{
    if (off > size || size - off < STORE_REC_HEADER)
        return STORE_CHECK_SHORT;
    const uint8_t *rec = data + off;
    *len = s_get32 (rec + 4);
    *type = rec[8];
    if (store_rec_extent (*len) > size - off)
        return STORE_CHECK_SHORT;
    if (*type < STORE_REC_MSG || *type > STORE_REC_CHECKPOINT)
        return STORE_CHECK_BAD;
    return STORE_CHECK_OK;
}

store_check_t
store_fmt_check (const uint8_t *data, uint64_t size, uint64_t off,
                 uint8_t *type, uint32_t *len)
{
    store_check_t check = store_fmt_bounds (data, size, off, type, len);
    if (check != STORE_CHECK_OK)
        return check;
    const uint8_t *rec = data + off;
    uint32_t crc = fedq_crc32c (0, rec + 4, (size_t) *len + 5);
    return crc == s_get32 (rec) ? STORE_CHECK_OK : STORE_CHECK_BAD;
}

bool
store_fmt_msg_parse (const uint8_t *rec, uint32_t len, store_msg_t *msg,
                     store_mark_t *marks)
{
    if (rec[8] != STORE_REC_MSG || len < STORE_MSG_FIXED - STORE_REC_HEADER)
        return false;
    memset (msg, 0, sizeof *msg);
    msg->priority = rec[9];
    msg->nmarks = rec[10];
    msg->nqueues = s_get16 (rec + 12);
    msg->nsettles = s_get16 (rec + 14);
    msg->seq = s_get64 (rec + 16);
    msg->published_at = (int64_t) s_get64 (rec + 24);
    msg->expires_at = (int64_t) s_get64 (rec + 32);
    msg->env_len = s_get32 (rec + 40);
    msg->body_len = s_get32 (rec + 44);
    msg->origin.len = s_get16 (rec + 48);
    msg->message_id.len = s_get16 (rec + 50);
    if (msg->nmarks > STORE_MAX_MARKS || msg->nqueues > STORE_MAX_QUEUES
        || msg->nsettles > STORE_MAX_SETTLES)
        return false;
    //  All counts are bounded, so this sum cannot overflow 64 bits.
    uint64_t end = STORE_REC_HEADER + (uint64_t) len;
    uint64_t off = STORE_MSG_FIXED;
    const uint8_t *qids = rec + off;
    off += 8 * (uint64_t) msg->nqueues;
    const uint8_t *settles = rec + off;
    off += 16 * (uint64_t) msg->nsettles;
    const uint8_t *values = rec + off;
    off += 8 * (uint64_t) msg->nmarks;
    const uint8_t *key_lens = rec + off;
    off += 2 * (uint64_t) msg->nmarks;
    if (off > end)
        return false;
    uint64_t key_bytes = 0;
    for (uint32_t i = 0; i < msg->nmarks; i++) {
        uint16_t key_len = s_get16 (key_lens + 2 * i);
        if (key_len == 0 || key_len > STORE_MAX_KEY)
            return false;
        key_bytes += key_len;
    }
    uint64_t need = off + msg->origin.len + msg->message_id.len + key_bytes
                    + msg->env_len + msg->body_len;
    if (need != end)
        return false;
    msg->qids = msg->nqueues ? (const uint64_t *) (const void *) qids : NULL;
    msg->settles = msg->nsettles
                       ? (const store_settle_t *) (const void *) settles
                       : NULL;
    msg->origin.ptr = (const char *) rec + off;
    off += msg->origin.len;
    msg->message_id.ptr = (const char *) rec + off;
    off += msg->message_id.len;
    for (uint32_t i = 0; i < msg->nmarks; i++) {
        marks[i].value = s_get64 (values + 8 * i);
        marks[i].key.len = s_get16 (key_lens + 2 * i);
        marks[i].key.ptr = (const char *) rec + off;
        if (memchr (marks[i].key.ptr, 0, marks[i].key.len))
            return false;       //  keys are handed out as C strings
        off += marks[i].key.len;
    }
    msg->marks = msg->nmarks ? marks : NULL;
    msg->env = rec + off;
    off += msg->env_len;
    msg->body = rec + off;
    return true;
}

bool
store_fmt_settle_parse (const uint8_t *rec, uint32_t len,
                        const store_settle_t **settles, uint32_t *n)
{
    if (rec[8] != STORE_REC_SETTLE
        || len < STORE_SETTLE_FIXED - STORE_REC_HEADER)
        return false;
    *n = s_get32 (rec + 12);
    if (*n > STORE_MAX_SETTLES || store_fmt_settle_len (*n) != len)
        return false;
    *settles = (const store_settle_t *) (const void *) (rec
                                                        + STORE_SETTLE_FIXED);
    return true;
}

bool
store_fmt_marks_parse (const uint8_t *rec, uint32_t len, bool ckpt,
                       store_marks_view_t *view)
{
    uint64_t fixed = ckpt ? STORE_CKPT_FIXED : STORE_MARKS_FIXED;
    if (rec[8] != (ckpt ? STORE_REC_CHECKPOINT : STORE_REC_MARKS)
        || len < fixed - STORE_REC_HEADER)
        return false;
    memset (view, 0, sizeof *view);
    view->rec = rec;
    if (ckpt) {
        if (s_get32 (rec + 12) != STORE_FORMAT_MAGIC)
            return false;
        view->version = s_get32 (rec + 16);
        view->segno = s_get32 (rec + 20);
        view->n = s_get32 (rec + 24);
    }
    else
        view->n = s_get32 (rec + 12);
    uint64_t end = STORE_REC_HEADER + (uint64_t) len;
    uint64_t off = fixed + 10 * (uint64_t) view->n;
    if (off > end)
        return false;
    view->values = rec + fixed;
    view->key_lens = rec + fixed + 8 * (uint64_t) view->n;
    view->keys = rec + off;
    uint64_t key_bytes = 0;
    for (uint32_t i = 0; i < view->n; i++) {
        uint16_t key_len = s_get16 (view->key_lens + 2 * i);
        if (key_len == 0 || key_len > STORE_MAX_KEY)
            return false;
        key_bytes += key_len;
    }
    if (off + key_bytes != end)
        return false;
    return memchr (view->keys, 0, (size_t) key_bytes) == NULL;
}
