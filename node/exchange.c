//  node/exchange.c — exchanges, bindings and routing.
#define _GNU_SOURCE
#include "exchange.h"

#include <stdlib.h>
#include <string.h>

fedq_rc_t
exchange_type_parse (fedq_str_t text, exchange_type_t *type)
{
    if (fedq_str_eq (text, "direct"))
        *type = EXCHANGE_DIRECT;
    else if (fedq_str_eq (text, "fanout"))
        *type = EXCHANGE_FANOUT;
    else if (fedq_str_eq (text, "topic"))
        *type = EXCHANGE_TOPIC;
    else
        return FEDQ_EINVAL;
    return FEDQ_OK;
}

const char *
exchange_type_name (exchange_type_t type)
{
    switch (type) {
        case EXCHANGE_DIRECT: return "direct";
        case EXCHANGE_FANOUT: return "fanout";
        case EXCHANGE_TOPIC: return "topic";
    }
    return "direct";
}

exchange_t *
exchange_new (const char *name, exchange_type_t type)
{
    exchange_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->name = strdup (name);
    self->type = type;
    return self;
}

void
exchange_destroy (exchange_t **self_p)
{
    exchange_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nbindings; i++)
        free (self->bindings[i].key);
    free (self->bindings);
    free (self->name);
    free (self);
    *self_p = NULL;
}

bool
exchange_bind (exchange_t *self, queue_t *queue, const char *key)
{
    for (size_t i = 0; i < self->nbindings; i++)
        if (self->bindings[i].queue == queue
            && strcmp (self->bindings[i].key, key) == 0)
            return false;
    binding_t *bindings = realloc (
      self->bindings, (self->nbindings + 1) * sizeof *bindings);
    if (!bindings)
        abort ();
    self->bindings = bindings;
    self->bindings[self->nbindings].queue = queue;
    self->bindings[self->nbindings].key = strdup (key);
    self->nbindings++;
    return true;
}

static void
s_remove_at (exchange_t *self, size_t i)
{
    free (self->bindings[i].key);
    memmove (&self->bindings[i], &self->bindings[i + 1],
             (self->nbindings - i - 1) * sizeof (binding_t));
    self->nbindings--;
}

bool
exchange_unbind (exchange_t *self, queue_t *queue, const char *key)
{
    for (size_t i = 0; i < self->nbindings; i++)
        if (self->bindings[i].queue == queue
            && strcmp (self->bindings[i].key, key) == 0) {
            s_remove_at (self, i);
            return true;
        }
    return false;
}

void
exchange_unbind_queue (exchange_t *self, queue_t *queue)
{
    for (size_t i = 0; i < self->nbindings;)
        if (self->bindings[i].queue == queue)
            s_remove_at (self, i);
        else
            i++;
}

//  Split text into dot-separated words; returns the count, or -1 when
//  there are more than max.
static int
s_split (const char *text, const char *end, fedq_str_t *words, int max)
{
    int n = 0;
    const char *word = text;
    while (true) {
        const char *dot = memchr (word, '.', (size_t) (end - word));
        const char *word_end = dot ? dot : end;
        if (n == max)
            return -1;
        words[n].ptr = word;
        words[n].len = (uint32_t) (word_end - word);
        n++;
        if (!dot)
            return n;
        word = dot + 1;
    }
}

static bool
s_word_is (fedq_str_t word, char c)
{
    return word.len == 1 && word.ptr[0] == c;
}

//  Glob matching over words: '#' matches any run of words (like '*' in a
//  glob), '*' exactly one word (like '?'). Backtracking to the last '#'
//  only is enough, so this is linear in practice and never recursive.
bool
exchange_topic_match (const char *pattern, fedq_str_t key)
{
    enum { MAX_WORDS = 256 };
    fedq_str_t pw[MAX_WORDS], kw[MAX_WORDS];
    const char *k = key.ptr ? key.ptr : "";
    int np = s_split (pattern, pattern + strlen (pattern), pw, MAX_WORDS);
    int nk = s_split (k, k + key.len, kw, MAX_WORDS);
    if (np < 0 || nk < 0)
        return false;
    int p = 0, w = 0, star_p = -1, star_w = 0;
    while (w < nk) {
        if (p < np && s_word_is (pw[p], '#')) {
            star_p = p++;
            star_w = w;
        }
        else
        if (p < np
            && (s_word_is (pw[p], '*')
                || (pw[p].len == kw[w].len
                    && memcmp (pw[p].ptr, kw[w].ptr, kw[w].len) == 0))) {
            p++;
            w++;
        }
        else
        if (star_p >= 0) {
            p = star_p + 1;
            w = ++star_w;
        }
        else
            return false;
    }
    while (p < np && s_word_is (pw[p], '#'))
        p++;
    return p == np;
}

static size_t
s_add (queue_t **out, size_t n, size_t max, queue_t *queue)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] == queue)
            return n;
    if (n < max)
        out[n++] = queue;
    return n;
}

size_t
exchange_route (const exchange_t *self, fedq_str_t key, queue_t **out,
                size_t n, size_t max)
{
    for (size_t i = 0; i < self->nbindings; i++) {
        const binding_t *b = &self->bindings[i];
        bool match = false;
        switch (self->type) {
            case EXCHANGE_FANOUT: match = true; break;
            case EXCHANGE_DIRECT: match = fedq_str_eq (key, b->key); break;
            case EXCHANGE_TOPIC:
                match = exchange_topic_match (b->key, key);
                break;
        }
        if (match)
            n = s_add (out, n, max, b->queue);
    }
    return n;
}
