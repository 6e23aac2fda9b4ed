/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A growable byte buffer for building HTTP bodies, JSON and metrics text.
 * Always NUL-terminated after a successful append. Growth is capped at
 * FM_BUF_MAX; past it (or on allocation failure) appends fail with -ENOBUFS
 * or -ENOMEM and the buffer keeps what it had.
 */

#include <stdarg.h>
#include <stddef.h>

#define FM_BUF_MAX (64u << 20) /* 64 MiB */

struct fm_buf {
        char *data; /* NULL until the first append */
        size_t len;
        size_t cap;
};

/* Frees the data; the buffer is empty and reusable afterwards. Accepts a zeroed buffer. */
void fm_buf_done(struct fm_buf *b);

/* Empties the buffer, keeping its memory. */
void fm_buf_reset(struct fm_buf *b);

/* Appends n bytes. Returns 0, -ENOMEM, -ENOBUFS. */
int fm_buf_append(struct fm_buf *b, const void *p, size_t n);

/* Appends formatted text. Returns 0, -ENOMEM, -ENOBUFS, -EINVAL (format error). */
int fm_buf_printf(struct fm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fm_buf_vprintf(struct fm_buf *b, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
