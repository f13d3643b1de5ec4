/* Unit tests of the arena's reuse between jobs (arena_recycle): memory kept
 * as one chunk when a use fits the bound, so the next use of the same size
 * allocates nothing; released past the bound; handed out zeroed again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/arena.h"

/* Fills the arena with n blocks of size bytes, each set to 0xAB; the first. */
static unsigned char *use(struct arena *a, size_t n, size_t size)
{
	unsigned char *first = NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = arena_alloc(a, size);
		assert_non_null(p);
		for (size_t j = 0; j < size; j++)
			assert_int_equal(p[j], 0); /* zeroed, also in memory used before */
		memset(p, 0xAB, size);
		if (!first)
			first = p;
	}
	return first;
}

static void recycle_keeps_one_chunk_for_the_next_use(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 0);
	use(&a, 20000, 100); /* about 2 MB over many growing chunks */
	size_t held = arena_held(&a);
	arena_recycle(&a, (size_t)64 << 20);
	size_t kept = arena_held(&a);
	assert_true(kept >= held - 4096);
	/* the same use again fits the kept chunk: nothing more is held, and
	 * the blocks are the kept chunk's (the first one where it starts) */
	unsigned char *first = use(&a, 20000, 100);
	assert_int_equal(arena_held(&a), kept);
	arena_recycle(&a, (size_t)64 << 20);
	assert_int_equal(arena_held(&a), kept);
	assert_ptr_equal(use(&a, 20000, 100), first);
	assert_int_equal(arena_held(&a), kept);
	/* a smaller use leaves the kept chunk as it is */
	arena_recycle(&a, (size_t)64 << 20);
	use(&a, 10, 100);
	arena_recycle(&a, (size_t)64 << 20);
	assert_int_equal(arena_held(&a), kept);
	arena_release(&a);
	assert_int_equal(arena_held(&a), 0);
}

static void recycle_releases_past_the_bound(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 0);
	use(&a, 2000, 1000);
	assert_true(arena_held(&a) > 1000000);
	arena_recycle(&a, 1000000);
	assert_int_equal(arena_held(&a), 0);
	/* usable again afterwards, and a recycle of an empty arena keeps nothing */
	use(&a, 10, 10);
	arena_release(&a);
	arena_recycle(&a, 1000000);
	assert_int_equal(arena_held(&a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(recycle_keeps_one_chunk_for_the_next_use),
		cmocka_unit_test(recycle_releases_past_the_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
