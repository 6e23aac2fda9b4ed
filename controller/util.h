/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Small helpers shared by every module: the time type, cleanup attributes
 * and a few macros. Nothing here allocates or touches the outside world.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Time inside the core: milliseconds, either since the Unix epoch (a point)
 * or as a duration. The core never reads a clock; callers pass `now`.
 */
typedef int64_t fm_ms;

#define FM_MS_PER_S 1000

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Floor division for possibly negative numerators (time bucket indices). */
static inline int64_t fm_floordiv(int64_t a, int64_t b)
{
        int64_t q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline uint32_t fm_sat_add_u32(uint32_t a, uint64_t b)
{
        uint64_t s = (uint64_t)a + b;
        return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}
