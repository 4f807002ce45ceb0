//  config/config_dump.c — write the effective configuration (every key,
//  defaults filled in) back as YAML, by walking the same table of keys the
//  loader uses; what it writes loads back to an equal config.
#define _GNU_SOURCE
#include "config_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

//  One UTF-8 character from p (at most left bytes); 0xFFFD when invalid.
static uint32_t
s_utf8_next (const unsigned char *p, size_t left, size_t *len)
{
    uint32_t cp = p[0];
    size_t n = cp < 0x80 ? 1 : (cp >> 5) == 6 ? 2 : (cp >> 4) == 14 ? 3
                           : (cp >> 3) == 30                       ? 4
                                                                   : 0;
    if (n == 0 || n > left) {
        *len = 1;
        return 0xFFFD;
    }
    if (n > 1)
        cp &= 0x3Fu >> (n - 1);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *len = 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    *len = n;
    return cp;
}

//  A YAML double-quoted scalar: escapes for quotes, backslashes and every
//  character YAML does not allow raw (controls, line separators, BOM).
static void
s_put_quoted (FILE *out, const char *text)
{
    const unsigned char *p = (const unsigned char *) text;
    size_t left = strlen (text);
    fputc ('"', out);
    while (left) {
        size_t len;
        uint32_t cp = s_utf8_next (p, left, &len);
        if (cp == '"' || cp == '\\')
            fprintf (out, "\\%c", (char) cp);
        else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
            fprintf (out, "\\x%02" PRIX32, cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF
                 || cp == 0xFFFE || cp == 0xFFFF)
            fprintf (out, "\\u%04" PRIX32, cp);
        else
            fwrite (p, 1, len, out);
        p += len;
        left -= len;
    }
    fputc ('"', out);
}

//  Start a line at indent; the first line of a list element gets "- ".
static void
s_indent (FILE *out, int indent, bool *dash)
{
    if (*dash) {
        fprintf (out, "%*s- ", indent - 2, "");
        *dash = false;
    }
    else
        fprintf (out, "%*s", indent, "");
}

static void
s_dump_scope (FILE *out, const char *scope, const void *base, int indent,
              bool dash, bool show_secrets)
{
    size_t index = 0;
    const cfg_key_t *key;
    while ((key = cfg_key_next_child (scope, &index))) {
        const char *name = cfg_key_name (key);
        const char *at = (const char *) base + key->offset;
        char text[64];
        if (key->kind == CFG_K_MAP) {
            if ((key->flags & CFG_F_PRESENCE)
                && !*(const bool *) ((const char *) base + key->offset2))
                continue;
            s_indent (out, indent, &dash);
            fprintf (out, "%s:\n", name);
            s_dump_scope (out, key->path, at, indent + 2, false,
                          show_secrets);
            continue;
        }
        if (key->kind == CFG_K_LIST) {
            size_t count;
            const char *array;
            char elem_scope[CFG_PATH_MAX];
            memcpy (&count, (const char *) base + key->offset2, sizeof count);
            memcpy (&array, at, sizeof array);
            s_indent (out, indent, &dash);
            fprintf (out, "%s:%s\n", name, count ? "" : " []");
            cfg_key_elem_scope (key, elem_scope, sizeof elem_scope);
            for (size_t i = 0; i < count; i++)
                s_dump_scope (out, elem_scope, array + i * key->elem_size,
                              indent + 4, true, show_secrets);
            continue;
        }
        //  A destination queue sets exchange and routing key itself.
        if ((key->flags & CFG_F_NOT_WITH_DEST_QUEUE)
            && ((const cfg_shovel_t *) base)->dest_queue)
            continue;
        switch (key->kind) {
            case CFG_K_STRING:
            case CFG_K_NAME:
            case CFG_K_PATH:
            case CFG_K_WORD:
            case CFG_K_ENDPOINT:
            case CFG_K_HOSTPORT: {
                const char *value = *(const char *const *) at;
                if (!value)
                    continue;
                s_indent (out, indent, &dash);
                fprintf (out, "%s: ", name);
                s_put_quoted (out, (key->flags & CFG_F_SECRET) && !show_secrets
                                       ? "<redacted>"
                                       : value);
                fputc ('\n', out);
                continue;
            }
            case CFG_K_BOOL:
                snprintf (text, sizeof text, "%s",
                          *(const bool *) at ? "true" : "false");
                break;
            case CFG_K_UINT:
                snprintf (text, sizeof text, "%" PRIu64,
                          cfg_key_get_uint (key, base));
                break;
            case CFG_K_DURATION:
                cfg_duration_text (cfg_key_get_uint (key, base), text,
                                   sizeof text);
                break;
            case CFG_K_SIZE:
                cfg_size_text (cfg_key_get_uint (key, base), text,
                               sizeof text);
                break;
            case CFG_K_ENUM:
                snprintf (text, sizeof text, "%s",
                          key->names[cfg_key_get_uint (key, base)]);
                break;
            case CFG_K_DELETE_AFTER: {
                uint64_t count;
                memcpy (&count, (const char *) base + key->offset2,
                        sizeof count);
                uint64_t mode = cfg_key_get_uint (key, base);
                if (mode == CFG_DELETE_COUNT)
                    snprintf (text, sizeof text, "%" PRIu64, count);
                else
                    snprintf (text, sizeof text, "%s",
                              mode == CFG_DELETE_NEVER ? "never"
                                                       : "queue-length");
                break;
            }
            default:
                continue;
        }
        s_indent (out, indent, &dash);
        fprintf (out, "%s: %s\n", name, text);
    }
}

void
cfg_dump (const cfg_t *cfg, FILE *out, bool show_secrets)
{
    fprintf (out, "#  Effective configuration of node %s (fedq %s), every "
                  "default filled in.\n",
             cfg->node.id ? cfg->node.id : "?", FEDQ_VERSION);
    if (!show_secrets && cfg->node.has_security
        && cfg->node.security.secret_key)
        fprintf (out, "#  Secret key paths are shown as \"<redacted>\".\n");
    s_dump_scope (out, "", cfg, 0, false, show_secrets);
    fflush (out);
}
