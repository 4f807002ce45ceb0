//  common/fedq.c — status names, logging, clocks, CRC32C, byte buffers.
#define _GNU_SOURCE
#include "fedq.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *
fedq_rc_name (fedq_rc_t rc)
{
    switch (rc) {
        case FEDQ_OK: return "OK";
        case FEDQ_EINVAL: return "EINVAL";
        case FEDQ_EPROTO: return "EPROTO";
        case FEDQ_EIO: return "EIO";
        case FEDQ_ENOSPC: return "ENOSPC";
        case FEDQ_ECONFIG: return "ECONFIG";
        case FEDQ_ENOMEM: return "ENOMEM";
        case FEDQ_ENOTFOUND: return "ENOTFOUND";
        case FEDQ_EEXISTS: return "EEXISTS";
        case FEDQ_ECORRUPT: return "ECORRUPT";
        case FEDQ_ETOOBIG: return "ETOOBIG";
        case FEDQ_EFULL: return "EFULL";
        case FEDQ_EUNROUTABLE: return "EUNROUTABLE";
        case FEDQ_EDENIED: return "EDENIED";
        case FEDQ_ETIMEOUT: return "ETIMEOUT";
        case FEDQ_ELOOP: return "ELOOP";
        case FEDQ_EAGAIN: return "EAGAIN";
        case FEDQ_ESESSION: return "ESESSION";
    }
    return "EUNKNOWN";
}

static fedq_log_level_t s_log_level = FEDQ_LOG_INFO;
static char s_log_tag[64];

void
fedq_log_setup (fedq_log_level_t level, const char *tag)
{
    s_log_level = level;
    snprintf (s_log_tag, sizeof s_log_tag, "%s", tag ? tag : "");
}

void
fedq_log_at (fedq_log_level_t level, const char *file, int line,
             const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < s_log_level)
        return;
    const char *base = strrchr (file, '/');
    base = base ? base + 1 : file;
    char text[1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    //  One line per event: newlines in the text would split it.
    for (char *c = text; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    if (s_log_tag[0])
        fprintf (stderr, "level=%s node=%s src=%s:%d %s\n", names[level],
                 s_log_tag, base, line, text);
    else
        fprintf (stderr, "level=%s src=%s:%d %s\n", names[level], base, line,
                 text);
}

int64_t
fedq_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
fedq_mono_ms (void)
{
    return fedq_mono_us () / 1000;
}

int64_t
fedq_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  CRC32C, slicing-by-8 over tables built once (reflected polynomial
//  0x82F63B78).
static uint32_t s_crc_table[8][256];
static bool s_crc_ready;

static void
s_crc_init (void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            s_crc_table[t][i] = (s_crc_table[t - 1][i] >> 8)
                                ^ s_crc_table[0][s_crc_table[t - 1][i] & 0xFF];
    s_crc_ready = true;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
//  The SSE4.2 crc32 instruction computes the same CRC32C 8 bytes at a time.
__attribute__ ((target ("sse4.2"))) static uint32_t
s_crc32c_hw (uint32_t crc, const void *data, size_t size)
{
    const uint8_t *p = data;
    uint64_t c = (uint32_t) ~crc;
    while (size && ((uintptr_t) p & 7)) {
        c = __builtin_ia32_crc32qi ((uint32_t) c, *p++);
        size--;
    }
    while (size >= 8) {
        uint64_t word;
        memcpy (&word, p, 8);
        c = __builtin_ia32_crc32di (c, word);
        p += 8;
        size -= 8;
    }
    while (size--)
        c = __builtin_ia32_crc32qi ((uint32_t) c, *p++);
    return ~(uint32_t) c;
}

static int s_crc_hw = -1;   //  -1 unknown, 0 no, 1 the CPU has SSE4.2
#endif

uint32_t
fedq_crc32c (uint32_t crc, const void *data, size_t size)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (s_crc_hw < 0)
        s_crc_hw = __builtin_cpu_supports ("sse4.2") ? 1 : 0;
    if (s_crc_hw)
        return s_crc32c_hw (crc, data, size);
#endif
    return fedq_crc32c_sw (crc, data, size);
}

uint32_t
fedq_crc32c_sw (uint32_t crc, const void *data, size_t size)
{
    if (!s_crc_ready)
        s_crc_init ();
    const uint8_t *p = data;
    crc = ~crc;
    while (size >= 8) {
        uint32_t lo, hi;
        memcpy (&lo, p, 4);
        memcpy (&hi, p + 4, 4);
        lo ^= crc;
        crc = s_crc_table[7][lo & 0xFF] ^ s_crc_table[6][(lo >> 8) & 0xFF]
              ^ s_crc_table[5][(lo >> 16) & 0xFF] ^ s_crc_table[4][lo >> 24]
              ^ s_crc_table[3][hi & 0xFF] ^ s_crc_table[2][(hi >> 8) & 0xFF]
              ^ s_crc_table[1][(hi >> 16) & 0xFF] ^ s_crc_table[0][hi >> 24];
        p += 8;
        size -= 8;
    }
    while (size--)
        crc = s_crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

void
fedq_buf_reserve (fedq_buf_t *buf, size_t extra)
{
    if (buf->size + extra <= buf->cap)
        return;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->size + extra)
        cap *= 2;
    uint8_t *data = realloc (buf->data, cap);
    if (!data) {
        fedq_error ("out of memory growing a buffer to %zu bytes", cap);
        abort ();
    }
    buf->data = data;
    buf->cap = cap;
}

void
fedq_buf_append (fedq_buf_t *buf, const void *data, size_t size)
{
    if (size == 0)
        return;
    fedq_buf_reserve (buf, size);
    memcpy (buf->data + buf->size, data, size);
    buf->size += size;
}

void
fedq_buf_free (fedq_buf_t *buf)
{
    free (buf->data);
    buf->data = NULL;
    buf->size = buf->cap = 0;
}

bool
fedq_str_eq (fedq_str_t s, const char *cstr)
{
    size_t n = strlen (cstr);
    return s.ptr && s.len == n && memcmp (s.ptr, cstr, n) == 0;
}

char *
fedq_str_dup (fedq_str_t s)
{
    char *copy = malloc ((size_t) s.len + 1);
    if (!copy)
        abort ();
    if (s.len)
        memcpy (copy, s.ptr, s.len);
    copy[s.len] = 0;
    return copy;
}

fedq_str_t
fedq_str_of (const char *cstr)
{
    fedq_str_t s = {cstr, cstr ? (uint32_t) strlen (cstr) : 0};
    return s;
}
