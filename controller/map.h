/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A hash map from names to items, for O(1) lookup of deployments, versions
 * and instances. The map does not own its items and stores no key copies:
 * each item carries its own NUL-terminated name, which the key function
 * returns. Open addressing with linear probing and backward-shift deletion
 * (no tombstones), grown at 70 % load.
 *
 * Names come from the network, so the hash is keyed (SipHash-1-3 with a
 * 128-bit key the caller supplies): without the key, nobody can choose
 * names that collide on purpose. The caller's caps bound the size.
 */

#include <stddef.h>
#include <stdint.h>

struct fm_map_slot {
        uint64_t hash;
        void *item; /* NULL: empty */
};

typedef const char *(*fm_map_key_fn)(const void *item);

struct fm_map {
        struct fm_map_slot *slot;
        uint32_t mask; /* capacity - 1; capacity is a power of two */
        uint32_t n;
        uint64_t k0, k1;
        fm_map_key_fn key;
};

/* Keyed hash of len bytes (SipHash-1-3). */
uint64_t fm_siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len);

/*
 * Sets up an empty map with room for at least `hint` items before it grows.
 * Returns 0, -EINVAL (key NULL), -ENOMEM.
 */
int fm_map_init(struct fm_map *m, uint64_t k0, uint64_t k1, fm_map_key_fn key, uint32_t hint);

/* Frees the table (not the items). Accepts a zeroed or already freed map. */
void fm_map_done(struct fm_map *m);

/* The item whose name equals the len bytes at name, or NULL. */
void *fm_map_get(const struct fm_map *m, const char *name, size_t len);

/* Adds item. Returns 0, -EEXIST if an item of that name is present, -ENOMEM. */
int fm_map_put(struct fm_map *m, void *item);

/* Removes exactly this item. Returns 0 or -ENOENT. */
int fm_map_remove(struct fm_map *m, const void *item);
