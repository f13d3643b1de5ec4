/* Unit tests of base/heap: heap_prepare leaves small requests alone,
 * never advises more than asked or than its cap, and the memory it made
 * ready serves allocations afterwards (written and read back). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_requests_do_nothing),
		cmocka_unit_test(large_requests_are_capped_and_usable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
