/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Evidence: the numbers a decision rests on, as an ordered list of
 * (key, value) pairs. Keys are static strings in snake_case with a unit
 * suffix where one applies (window_s, failure_rate). The shell prints them
 * as key=value and writes them into audit records; the core only fills them.
 */

#include <stdint.h>

#define FM_EVIDENCE_MAX 24

struct fm_evidence_item {
        const char *key; /* static storage */
        double value;
};

struct fm_evidence {
        uint32_t n;
        struct fm_evidence_item item[FM_EVIDENCE_MAX];
};

/* Appends one pair; pairs past FM_EVIDENCE_MAX are dropped (callers stay far below it). */
static inline void fm_evidence_add(struct fm_evidence *e, const char *key, double value)
{
        if (e->n < FM_EVIDENCE_MAX)
                e->item[e->n++] = (struct fm_evidence_item){key, value};
}
