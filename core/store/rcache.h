/* rcache — a bounded in-memory cache of the current version of resources, as
 * the JSON text the store keeps, in front of a store whose process is the
 * database's only writer (see store.h: the SQLite store takes an exclusive
 * lock on its data directory for this).
 *
 * Coherence: a reader that misses takes a ticket (rcache_get), reads the
 * backend, and offers what it read with that ticket (rcache_put). A writer
 * calls rcache_invalidate for every resource it changed once the change is
 * committed (or rolled back), before the write is acknowledged. The
 * invalidation drops the entry and voids every ticket taken before it, so a
 * text read from an older snapshot is never cached after a newer version was
 * committed. Readers inside an open transaction must not use the cache at
 * all (they could see, and offer, writes not yet committed).
 *
 * Bounds: at most max_bytes of texts and keys (plus a fixed overhead per
 * entry, counted too); the least recently used entries go first. Texts larger
 * than max_bytes / 64 are never cached.
 *
 * Threads: every function may be called from any thread; the cache is split
 * into shards, each behind its own mutex.
 *
 * Ownership: keys and texts are copied in and out; rcache_get fills *out with
 * a malloc'd copy the caller frees. */
#ifndef CW_RCACHE_H
#define CW_RCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct rcache;

/* NULL when max_bytes is 0 (no cache) or memory is short. */
struct rcache *rcache_new(size_t max_bytes);
void rcache_free(struct rcache *c);

/* A hit copies the cached version into *out and returns true. A miss returns
 * false and a ticket for rcache_put. */
bool rcache_get(struct rcache *c, const char *type, const char *id, struct store_text *out, uint64_t *ticket);
/* Caches t as the current version of type/id unless the ticket was voided by
 * an invalidation of that resource since. t is copied. */
void rcache_put(struct rcache *c, const char *type, const char *id, uint64_t ticket, const struct store_text *t);
/* Drops type/id and voids the tickets taken for it so far. */
void rcache_invalidate(struct rcache *c, const char *type, const char *id);

/* Drops everything and voids every ticket. */
void rcache_clear(struct rcache *c);

struct rcache_stats {
	size_t entries, bytes;
};
void rcache_stats(struct rcache *c, struct rcache_stats *out);

#endif
