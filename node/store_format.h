//  node/store_format.h — the byte layout of the durable log's records
//  (private to the store; docs/storage.md "Store format" is the contract).
//
//  Every record starts at an 8-byte aligned offset of its segment:
//
//      u32 crc32c   over bytes 4 .. 9 + len (length, type and payload)
//      u32 len      payload bytes
//      u8  type     STORE_REC_*
//      payload      len bytes
//      padding      zero bytes up to the next multiple of 8
//
//  Payloads lay their fixed-width arrays out first, at 8-byte aligned
//  offsets, so a reader can point into a read-only mapping of the segment
//  without copying. Multi-byte fields are little-endian.
#ifndef STORE_FORMAT_H_INCLUDED
#define STORE_FORMAT_H_INCLUDED

#include "store.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the store maps little-endian records straight into memory"
#endif

#define STORE_REC_MSG 1
#define STORE_REC_SETTLE 2
#define STORE_REC_MARKS 3
#define STORE_REC_CHECKPOINT 4

#define STORE_REC_HEADER 9          //  crc, len, type
#define STORE_MSG_FIXED 56          //  record bytes before the qids array
#define STORE_SETTLE_FIXED 16       //  record bytes before the settles
#define STORE_MARKS_FIXED 16        //  record bytes before the mark values
#define STORE_CKPT_FIXED 32         //  record bytes before the mark values

#define STORE_FORMAT_MAGIC 0x474C5146u  //  "FQLG" as little-endian bytes
#define STORE_FORMAT_VERSION 1u

#define STORE_MAX_KEY 1024          //  bytes in one mark key
#define STORE_MAX_STR 65535         //  bytes in origin and message_id

//  Record bytes on disk (header, payload and padding) for a payload length.
static inline uint64_t
store_rec_extent (uint64_t len)
{
    return (STORE_REC_HEADER + len + 7) & ~(uint64_t) 7;
}

//  Payload length of a message record; 0 when a field is over its limit.
uint64_t
    store_fmt_msg_len (const store_msg_t *msg);

//  Write a message record (whose payload length is len) at out, which
//  has store_rec_extent (len) bytes.
void
    store_fmt_msg_write (uint8_t *out, uint64_t len, const store_msg_t *msg);

//  Payload length of a settle record for n settlements.
uint64_t
    store_fmt_settle_len (size_t n);

void
    store_fmt_settle_write (uint8_t *out, uint64_t len,
                            const store_settle_t *settles, size_t n);

//  Payload length of a marks record (checkpoint when ckpt) with n marks
//  whose keys hold key_bytes bytes in all.
uint64_t
    store_fmt_marks_len (size_t n, uint64_t key_bytes, bool ckpt);

//  Start a marks (or checkpoint) record with n marks at out; the caller
//  then calls store_fmt_marks_put for i = 0 .. n-1 and store_fmt_seal.
void
    store_fmt_marks_begin (uint8_t *out, uint64_t len, size_t n, bool ckpt,
                           uint32_t segno);

//  Put mark i of n; key bytes go at *key_off (advanced).
void
    store_fmt_marks_put (uint8_t *out, size_t n, size_t i, bool ckpt,
                         const char *key, uint32_t key_len, uint64_t value,
                         uint64_t *key_off);

//  Zero the padding and set the CRC of a record whose payload is written.
void
    store_fmt_seal (uint8_t *out, uint64_t len);

//  What store_fmt_check found at an offset.
typedef enum {
    STORE_CHECK_OK = 0,     //  a whole record with a good CRC
    STORE_CHECK_SHORT,      //  header or payload runs past the end
    STORE_CHECK_BAD,        //  CRC mismatch or unknown type
} store_check_t;

//  Check the record at data + off (off 8-aligned, size bytes in all);
//  *type and *len get its type and payload length when they can be read.
store_check_t
    store_fmt_check (const uint8_t *data, uint64_t size, uint64_t off,
                     uint8_t *type, uint32_t *len);

//  store_fmt_check without the CRC: the record's type and length fit the
//  data (STORE_CHECK_OK), or STORE_CHECK_SHORT / STORE_CHECK_BAD.
store_check_t
    store_fmt_bounds (const uint8_t *data, uint64_t size, uint64_t off,
                      uint8_t *type, uint32_t *len);

//  Decode a message record checked by store_fmt_check; marks go into
//  marks[STORE_MAX_MARKS]. False when the payload is malformed.
bool
    store_fmt_msg_parse (const uint8_t *rec, uint32_t len, store_msg_t *msg,
                         store_mark_t *marks);

//  Decode a settle record: *settles points into rec.
bool
    store_fmt_settle_parse (const uint8_t *rec, uint32_t len,
                            const store_settle_t **settles, uint32_t *n);

//  A decoded marks or checkpoint record, read mark by mark.
typedef struct {
    const uint8_t *rec;         //  the record
    uint32_t n;                 //  marks in it
    uint32_t segno;             //  checkpoint only: segment it opens
    uint32_t version;           //  checkpoint only: format version
    const uint8_t *values;      //  u64 values[n]
    const uint8_t *key_lens;    //  u16 key_lens[n]
    const uint8_t *keys;        //  concatenated key bytes
} store_marks_view_t;

bool
    store_fmt_marks_parse (const uint8_t *rec, uint32_t len, bool ckpt,
                           store_marks_view_t *view);

#endif
