#include "base/heap.h"

#include <stdint.h>
#include <stdlib.h>

#ifdef __GLIBC__
#include <malloc.h>
#include <sys/mman.h>
#endif

size_t heap_prepare(size_t bytes)
{
#if defined(__GLIBC__) && defined(MADV_HUGEPAGE)
	const uintptr_t huge = (uintptr_t)2 << 20;
	if (bytes < 2 * huge)
		return 0;
	if (bytes > HEAP_PREPARE_MAX)
		bytes = HEAP_PREPARE_MAX;
	/* the block comes from the heap, not a mapping of its own, and once
	 * freed stays there (not trimmed) as the free space the next
	 * allocations are carved from */
	if (mallopt(M_MMAP_THRESHOLD, (int)HEAP_PREPARE_MAX + (1 << 20)) != 1 ||
	    mallopt(M_TRIM_THRESHOLD, (int)HEAP_PREPARE_MAX * 2) != 1)
		return 0;
	char *block = malloc(bytes);
	if (!block)
		return 0;
	uintptr_t from = ((uintptr_t)block + huge - 1) & ~(huge - 1);
	uintptr_t to = ((uintptr_t)block + bytes) & ~(huge - 1);
	size_t ready = from < to && madvise((void *)from, (size_t)(to - from), MADV_HUGEPAGE) == 0 ? to - from : 0;
	free(block);
	return ready;
#else
	(void)bytes;
	return 0;
#endif
}

size_t heap_keep(size_t bytes)
{
#ifdef __GLIBC__
	if (bytes > HEAP_KEEP_MAX)
		bytes = HEAP_KEEP_MAX;
	if (bytes == 0)
		return 0;
	/* setting either turns glibc's moving thresholds off; a sanitizer's
	 * malloc answers mallopt with 0: nothing is kept */
	if (mallopt(M_MMAP_THRESHOLD, (int)bytes) != 1 || mallopt(M_TRIM_THRESHOLD, (int)bytes) != 1)
		return 0;
	return bytes;
#else
	(void)bytes;
	return 0;
#endif
}
