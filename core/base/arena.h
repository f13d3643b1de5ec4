/* arena — per-request bump allocation: many small allocations, one release.
 *
 * An arena hands out zeroed blocks aligned for any type from chunks it
 * mallocs as needed, up to a byte budget; arena_release frees everything at
 * once. arena_init allocates nothing, so an arena costs nothing until used.
 *
 * Threads: one arena belongs to one thread (one request). Errors: allocation
 * beyond the budget or a failed malloc returns NULL and leaves the arena
 * usable. */
#ifndef CW_ARENA_H
#define CW_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t used;   /* bytes handed out and in chunk overhead */
	size_t budget; /* 0 = ARENA_DEFAULT_BUDGET */
};

#define ARENA_DEFAULT_BUDGET ((size_t)64 << 20)

void arena_init(struct arena *a, size_t budget);
void *arena_alloc(struct arena *a, size_t size);
/* The same, not zeroed: for memory the caller fills at once. */
void *arena_alloc_raw(struct arena *a, size_t size);
/* Copies s (NULL → NULL), or n bytes of s plus a NUL. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Frees every chunk; the arena may be used again afterwards. */
void arena_release(struct arena *a);
/* Like arena_release, but keeps the newest (largest) chunk, emptied, for the
 * next use: for a loop that uses an arena per item without a malloc each. */
void arena_reset(struct arena *a);
/* Empties the arena for the next use and keeps its memory when the last use
 * took at most keep_max bytes: as one chunk that holds all of that use, so
 * a use of the same size again allocates nothing and touches no fresh page
 * (the first such chunk is fresh; every later use reuses it). A use past
 * keep_max releases everything (arena_release). For an arena kept by a
 * long-lived worker between its jobs. */
void arena_recycle(struct arena *a, size_t keep_max);
/* The bytes the arena holds now (chunks and their overhead). */
size_t arena_held(const struct arena *a);

#endif
