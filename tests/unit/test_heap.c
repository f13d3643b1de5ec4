/* Unit tests of base/heap: heap_prepare leaves small requests alone,
 * never advises more than asked or than its cap, and the memory it made
 * ready serves allocations afterwards (written and read back); heap_keep
 * caps what it keeps, and a large block freed then taken again is served
 * from pages already faulted in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/heap.h"

static void small_requests_do_nothing(void **state)
{
	(void)state;
	assert_int_equal(heap_prepare(0), 0);
	assert_int_equal(heap_prepare((size_t)1 << 20), 0);
}

static void large_requests_are_capped_and_usable(void **state)
{
	(void)state;
	size_t ready = heap_prepare((size_t)12 << 20);
	assert_true(ready <= (size_t)12 << 20);
	assert_true(heap_prepare(SIZE_MAX) <= HEAP_PREPARE_MAX);
	/* what comes next lives in that memory and behaves as any */
	enum { N = 100000 };
	char **p = calloc(N, sizeof *p);
	assert_non_null(p);
	for (size_t i = 0; i < N; i++) {
		p[i] = malloc(48);
		assert_non_null(p[i]);
		memset(p[i], (int)(i & 0xff), 48);
	}
	for (size_t i = 0; i < N; i++) {
		assert_int_equal((unsigned char)p[i][47], i & 0xff);
		free(p[i]);
	}
	free(p);
}

static long minor_faults(void)
{
	struct rusage ru;
	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_minflt;
}

static void kept_memory_serves_the_next_block(void **state)
{
	(void)state;
	assert_int_equal(heap_keep(0), 0);
	size_t kept = heap_keep(SIZE_MAX);
	/* nothing done (a sanitizer's allocator, not glibc), or capped */
	assert_true(kept == 0 || kept == HEAP_KEEP_MAX);
	if (!kept)
		skip();
	/* a block that glibc, by default, maps on its own and unmaps once
	 * freed (4 MiB is past its first threshold, 128 KiB), then takes from
	 * fresh heap memory the second time: kept, only the first round
	 * faults its 1024 pages in */
	const size_t size = (size_t)4 << 20;
	long worst = 0;
	for (int round = 0; round < 3; round++) {
		long before = minor_faults();
		char *b = malloc(size);
		assert_non_null(b);
		memset(b, round, size);
		assert_int_equal((unsigned char)b[size - 1], round);
		free(b);
		long faults = minor_faults() - before;
		if (round > 0 && faults > worst)
			worst = faults;
	}
	assert_true(worst < 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: heap_prepare changes the same thresholds */
		cmocka_unit_test(kept_memory_serves_the_next_block),
		cmocka_unit_test(small_requests_do_nothing),
		cmocka_unit_test(large_requests_are_capped_and_usable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
