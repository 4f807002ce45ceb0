//  client/cli_table.c — a plain text table: titles, rows of cells, columns
//  padded to their widest cell (counted in UTF-8 characters).
#define _GNU_SOURCE
#include "cli.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct _cli_table_t {
    size_t ncols;               //  columns
    char **cells;               //  titles first, then rows, row-major
    size_t ncells;              //  cells in use (titles included)
    size_t cap;                 //  cells allocated
    bool *right;                //  per column: right-aligned
};

//  Characters in a UTF-8 string (bytes that do not continue a sequence).
static size_t
s_width (const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

static void
s_push (cli_table_t *self, char *cell)
{
    if (self->ncells == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        char **grown = realloc (self->cells, cap * sizeof *grown);
        if (!grown)
            abort ();
        self->cells = grown;
        self->cap = cap;
    }
    self->cells[self->ncells++] = cell;
}

cli_table_t *
cli_table_new (const char *title, ...)
{
    cli_table_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    va_list args;
    va_start (args, title);
    for (const char *t = title; t; t = va_arg (args, const char *)) {
        s_push (self, strdup (t));
        self->ncols++;
    }
    va_end (args);
    assert (self->ncols > 0);
    self->right = calloc (self->ncols, sizeof *self->right);
    if (!self->right)
        abort ();
    return self;
}

void
cli_table_destroy (cli_table_t **self_p)
{
    assert (self_p);
    cli_table_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->ncells; i++)
        free (self->cells[i]);
    free (self->cells);
    free (self->right);
    free (self);
    *self_p = NULL;
}

void
cli_table_align_right (cli_table_t *self, size_t col)
{
    assert (self);
    assert (col < self->ncols);
    self->right[col] = true;
}

void
cli_table_add (cli_table_t *self, const char *fmt, ...)
{
    assert (self);
    char *cell = NULL;
    va_list args;
    va_start (args, fmt);
    if (vasprintf (&cell, fmt, args) < 0)
        abort ();
    va_end (args);
    //  A cell is one line: tabs and newlines would break the columns.
    for (char *c = cell; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    s_push (self, cell);
}

size_t
cli_table_rows (cli_table_t *self)
{
    assert (self);
    return (self->ncells - self->ncols + self->ncols - 1) / self->ncols;
}

void
cli_table_render (cli_table_t *self, fedq_buf_t *out)
{
    assert (self);
    size_t nrows = cli_table_rows (self) + 1;
    size_t *width = calloc (self->ncols, sizeof *width);
    if (!width)
        abort ();
    for (size_t i = 0; i < self->ncells; i++) {
        size_t w = s_width (self->cells[i]);
        if (w > width[i % self->ncols])
            width[i % self->ncols] = w;
    }
    for (size_t row = 0; row < nrows; row++) {
        //  The last cell that has text: no padding after it.
        size_t last = 0;
        for (size_t col = 0; col < self->ncols; col++) {
            size_t i = row * self->ncols + col;
            if (i < self->ncells && self->cells[i][0])
                last = col;
        }
        for (size_t col = 0; col <= last; col++) {
            size_t i = row * self->ncols + col;
            const char *text = i < self->ncells ? self->cells[i] : "";
            size_t pad = width[col] - s_width (text);
            bool right = self->right[col];
            if (col > 0)
                fedq_buf_append (out, "  ", 2);
            for (size_t k = 0; right && k < pad; k++)
                fedq_buf_append (out, " ", 1);
            fedq_buf_append (out, text, strlen (text));
            for (size_t k = 0; !right && col < last && k < pad; k++)
                fedq_buf_append (out, " ", 1);
        }
        fedq_buf_append (out, "\n", 1);
    }
    free (width);
}
