//  common/fedq.h — what every part of fedq shares: status codes, logging,
//  clocks, CRC32C and a growable byte buffer.
#ifndef FEDQ_H_INCLUDED
#define FEDQ_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEDQ_VERSION "0.1.0"

//  Status codes. Functions that can fail return one of these; the code that
//  first learns the cause logs it once, callers pass the code up.
typedef enum {
    FEDQ_OK = 0,
    FEDQ_EINVAL = -1,       //  bad argument or bad input from a user
    FEDQ_EPROTO = -2,       //  malformed frame or wrong protocol version
    FEDQ_EIO = -3,          //  read, write or fsync failed
    FEDQ_ENOSPC = -4,       //  disk full
    FEDQ_ECONFIG = -5,      //  invalid configuration
    FEDQ_ENOMEM = -6,       //  allocation failed
    FEDQ_ENOTFOUND = -7,    //  no such queue, exchange, link, consumer
    FEDQ_EEXISTS = -8,      //  declared with different options
    FEDQ_ECORRUPT = -9,     //  stored data failed its checksum mid-log
    FEDQ_ETOOBIG = -10,     //  message or frame over a configured limit
    FEDQ_EFULL = -11,       //  queue full (overflow: reject-publish)
    FEDQ_EUNROUTABLE = -12, //  no queue bound for the routing key
    FEDQ_EDENIED = -13,     //  not allowed (consume on a shovel source, auth)
    FEDQ_ETIMEOUT = -14,    //  no answer in time
    FEDQ_ELOOP = -15,       //  message already visited the destination node
    FEDQ_EAGAIN = -16,      //  try again later (no credit, nothing ready)
    FEDQ_ESESSION = -17,    //  unknown session (node restarted, session
                            //  expired): send HELLO again, republish
} fedq_rc_t;

//  Short, stable name of a status code ("EPROTO").
const char *
    fedq_rc_name (fedq_rc_t rc);

//  Log levels, lowest first.
typedef enum {
    FEDQ_LOG_DEBUG = 0,
    FEDQ_LOG_INFO = 1,
    FEDQ_LOG_WARN = 2,
    FEDQ_LOG_ERROR = 3,
} fedq_log_level_t;

//  Set the minimum level printed and an optional component tag (node id).
void
    fedq_log_setup (fedq_log_level_t level, const char *tag);

//  Print one log line to stderr: "level=warn node=sydney src=store.c:42 msg".
//  One line per event; key=value fields fit journald.
void
    fedq_log_at (fedq_log_level_t level, const char *file, int line,
                 const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

#define fedq_debug(...) fedq_log_at (FEDQ_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define fedq_info(...) fedq_log_at (FEDQ_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define fedq_warn(...) fedq_log_at (FEDQ_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define fedq_error(...) fedq_log_at (FEDQ_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)

//  Monotonic clock in milliseconds and microseconds.
int64_t
    fedq_mono_ms (void);
int64_t
    fedq_mono_us (void);

//  Wall clock in milliseconds since the Unix epoch.
int64_t
    fedq_wall_ms (void);

//  CRC32C (Castagnoli) of data, continuing from crc (start with 0).
uint32_t
    fedq_crc32c (uint32_t crc, const void *data, size_t size);
//  The same CRC32C without the SSE4.2 instruction (portable; for tests).
uint32_t
    fedq_crc32c_sw (uint32_t crc, const void *data, size_t size);

//  A growable byte buffer. Zero-initialise, then append; free with
//  fedq_buf_free. Allocation failure aborts: buffers are sized by limits
//  the caller has already checked.
typedef struct {
    uint8_t *data;      //  bytes, or NULL while empty
    size_t size;        //  bytes in use
    size_t cap;         //  bytes allocated
} fedq_buf_t;

void
    fedq_buf_reserve (fedq_buf_t *buf, size_t extra);
void
    fedq_buf_append (fedq_buf_t *buf, const void *data, size_t size);
void
    fedq_buf_free (fedq_buf_t *buf);

//  A borrowed string slice, not NUL-terminated (points into a frame).
typedef struct {
    const char *ptr;    //  first byte, or NULL when absent
    uint32_t len;       //  length in bytes
} fedq_str_t;

//  True when the slice equals the C string.
bool
    fedq_str_eq (fedq_str_t s, const char *cstr);

//  A fresh NUL-terminated copy of the slice; the caller frees it.
char *
    fedq_str_dup (fedq_str_t s);

//  A slice of a C string (borrowed).
fedq_str_t
    fedq_str_of (const char *cstr);

#endif
