/* SPDX-License-Identifier: MIT */
#include "map.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void sipround(uint64_t v[4])
{
        v[0] += v[1];
        v[1] = ROTL(v[1], 13);
        v[1] ^= v[0];
        v[0] = ROTL(v[0], 32);
        v[2] += v[3];
        v[3] = ROTL(v[3], 16);
        v[3] ^= v[2];
        v[0] += v[3];
        v[3] = ROTL(v[3], 21);
        v[3] ^= v[0];
        v[2] += v[1];
        v[1] = ROTL(v[1], 17);
        v[1] ^= v[2];
        v[2] = ROTL(v[2], 32);
}

static inline uint64_t load64le(const uint8_t *p)
{
        uint64_t x = 0;
        for (int i = 7; i >= 0; i--)
                x = (x << 8) | p[i];
        return x;
}

uint64_t fm_siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
        const uint8_t *p = data;
        uint64_t v[4] = {
                k0 ^ UINT64_C(0x736f6d6570736575),
                k1 ^ UINT64_C(0x646f72616e646f6d),
                k0 ^ UINT64_C(0x6c7967656e657261),
                k1 ^ UINT64_C(0x7465646279746573),
        };
        size_t full = len & ~(size_t)7;

        for (size_t i = 0; i < full; i += 8) {
                uint64_t m = load64le(p + i);
                v[3] ^= m;
                sipround(v);
                v[0] ^= m;
        }

        uint64_t b = (uint64_t)len << 56;
        for (size_t i = 0; i < (len & 7); i++)
                b |= (uint64_t)p[full + i] << (8 * i);
        v[3] ^= b;
        sipround(v);
        v[0] ^= b;

        v[2] ^= 0xff;
        sipround(v);
        sipround(v);
        sipround(v);
        return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint32_t capacity_for(uint32_t items)
{
        uint64_t want = (uint64_t)items * 10 / 7 + 1;
        uint32_t cap = 8;
        while (cap < want && cap < (UINT32_C(1) << 31))
                cap <<= 1;
        return cap;
}

int fm_map_init(struct fm_map *m, uint64_t k0, uint64_t k1, fm_map_key_fn key, uint32_t hint)
{
        if (!key)
                return -EINVAL;
        uint32_t cap = capacity_for(hint);
        struct fm_map_slot *s = calloc(cap, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *m = (struct fm_map){.slot = s, .mask = cap - 1, .k0 = k0, .k1 = k1, .key = key};
        return 0;
}

void fm_map_done(struct fm_map *m)
{
        free(m->slot);
        m->slot = NULL;
        m->mask = 0;
        m->n = 0;
}

static bool same_name(const struct fm_map *m, const void *item, const char *name, size_t len)
{
        const char *k = m->key(item);
        return strnlen(k, len + 1) == len && memcmp(k, name, len) == 0;
}

void *fm_map_get(const struct fm_map *m, const char *name, size_t len)
{
        if (!m->slot)
                return NULL;
        uint64_t h = fm_siphash13(m->k0, m->k1, name, len);
        for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
                const struct fm_map_slot *s = &m->slot[i];
                if (!s->item)
                        return NULL;
                if (s->hash == h && same_name(m, s->item, name, len))
                        return s->item;
        }
}

/* Places (h, item) in the first free slot of its probe sequence; no duplicate check. */
static void place(struct fm_map_slot *slot, uint32_t mask, uint64_t h, void *item)
{
        uint32_t i = (uint32_t)h & mask;
        while (slot[i].item)
                i = (i + 1) & mask;
        slot[i] = (struct fm_map_slot){.hash = h, .item = item};
}

static int grow(struct fm_map *m)
{
        uint32_t cap = (m->mask + 1) * 2;
        if (cap == 0)
                return -ENOMEM;
        struct fm_map_slot *s = calloc(cap, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (uint32_t i = 0; i <= m->mask; i++)
                if (m->slot[i].item)
                        place(s, cap - 1, m->slot[i].hash, m->slot[i].item);
        free(m->slot);
        m->slot = s;
        m->mask = cap - 1;
        return 0;
}

int fm_map_put(struct fm_map *m, void *item)
{
        const char *name = m->key(item);
        size_t len = strlen(name);

        if (fm_map_get(m, name, len))
                return -EEXIST;
        if ((uint64_t)(m->n + 1) * 10 > (uint64_t)(m->mask + 1) * 7) {
                int r = grow(m);
                if (r < 0)
                        return r;
        }
        place(m->slot, m->mask, fm_siphash13(m->k0, m->k1, name, len), item);
        m->n++;
        return 0;
}

/*
 * Backward-shift deletion: after emptying slot i, walk the cluster that
 * follows it and move back every entry whose home slot does not lie
 * cyclically in (i, j], so that no probe sequence crosses a hole.
 */
int fm_map_remove(struct fm_map *m, const void *item)
{
        if (!m->slot)
                return -ENOENT;
        const char *name = m->key(item);
        uint64_t h = fm_siphash13(m->k0, m->k1, name, strlen(name));
        uint32_t i = (uint32_t)h & m->mask;

        for (;; i = (i + 1) & m->mask) {
                if (!m->slot[i].item)
                        return -ENOENT;
                if (m->slot[i].item == item)
                        break;
        }

        for (uint32_t j = (i + 1) & m->mask;; j = (j + 1) & m->mask) {
                struct fm_map_slot *s = &m->slot[j];
                if (!s->item)
                        break;
                uint32_t home = (uint32_t)s->hash & m->mask;
                /* distance from home to j, and from i to j, along the ring */
                if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
                        m->slot[i] = *s;
                        i = j;
                }
        }
        m->slot[i] = (struct fm_map_slot){0};
        m->n--;
        return 0;
}
