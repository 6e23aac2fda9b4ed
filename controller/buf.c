/* SPDX-License-Identifier: MIT */
#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fm_buf_done(struct fm_buf *b)
{
        free(b->data);
        *b = (struct fm_buf){0};
}

void fm_buf_reset(struct fm_buf *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

/* Makes room for `extra` more bytes plus the terminating NUL. */
static int reserve(struct fm_buf *b, size_t extra)
{
        if (extra >= FM_BUF_MAX || b->len + extra + 1 > FM_BUF_MAX)
                return -ENOBUFS;
        size_t need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
                cap *= 2;
        if (cap > FM_BUF_MAX)
                cap = FM_BUF_MAX;
        char *p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int fm_buf_append(struct fm_buf *b, const void *p, size_t n)
{
        int r = reserve(b, n);
        if (r < 0)
                return r;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int fm_buf_vprintf(struct fm_buf *b, const char *fmt, va_list ap)
{
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        int r = reserve(b, (size_t)n);
        if (r < 0)
                return r;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int fm_buf_printf(struct fm_buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = fm_buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}
