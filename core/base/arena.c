#include "base/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN 4096

struct arena_chunk {
	struct arena_chunk *next;
	size_t cap, pos;
	alignas(max_align_t) unsigned char data[];
};

void arena_init(struct arena *a, size_t budget)
{
	a->head = NULL;
	a->used = 0;
	a->budget = budget ? budget : ARENA_DEFAULT_BUDGET;
}

static size_t round_up(size_t n)
{
	const size_t al = alignof(max_align_t);
	return (n + al - 1) & ~(al - 1);
}

void *arena_alloc(struct arena *a, size_t size)
{
	void *p = arena_alloc_raw(a, size);
	if (p)
		memset(p, 0, size ? size : 1);
	return p;
}

void *arena_alloc_raw(struct arena *a, size_t size)
{
	if (size == 0)
		size = 1;
	if (size > SIZE_MAX / 2)
		return NULL;
	size = round_up(size);
	struct arena_chunk *c = a->head;
	if (!c || c->cap - c->pos < size) {
		size_t cap = size > CHUNK_MIN ? size : CHUNK_MIN;
		/* Grow chunk sizes with use so large requests take few mallocs. */
		if (a->used / 4 > cap)
			cap = round_up(a->used / 4);
		size_t total = sizeof *c + cap;
		if (a->used + total > a->budget) {
			cap = size;
			total = sizeof *c + cap;
			if (a->used + total > a->budget)
				return NULL;
		}
		c = malloc(total);
		if (!c)
			return NULL;
		c->cap = cap;
		c->pos = 0;
		c->next = a->head;
		a->head = c;
		a->used += total;
	}
	void *p = c->data + c->pos;
	c->pos += size;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	if (!s)
		return NULL;
	char *d = arena_alloc(a, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

void arena_release(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *keep = a->head;
	if (!keep)
		return;
	struct arena_chunk *c = keep->next;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	keep->next = NULL;
	keep->pos = 0;
	a->used = sizeof *keep + keep->cap;
}

void arena_recycle(struct arena *a, size_t keep_max)
{
	struct arena_chunk *c = a->head;
	if (!c)
		return;
	size_t total = a->used;
	if (total > keep_max) {
		arena_release(a);
		return;
	}
	if (!c->next) {
		/* one chunk already held the whole use: the steady state */
		c->pos = 0;
		return;
	}
	arena_release(a);
	size_t cap = round_up(total);
	c = malloc(sizeof *c + cap);
	if (!c)
		return; /* nothing kept: the next use allocates as it goes */
	c->cap = cap;
	c->pos = 0;
	c->next = NULL;
	a->head = c;
	a->used = sizeof *c + cap;
}

size_t arena_held(const struct arena *a) { return a->used; }
