/* heap — readying the process heap for one large burst of small
 * allocations, such as the tree of a whole document a command converts.
 *
 * Every page of fresh heap memory costs a page fault when it is first
 * touched; a tree of a few million nodes touches thousands of pages, and on
 * a virtual machine the faults can cost as much as the parsing itself.
 * heap_prepare takes one block of about the bytes asked for (at most
 * HEAP_PREPARE_MAX) from the heap, asks the kernel to back it with
 * transparent huge pages (madvise MADV_HUGEPAGE, honoured when the system
 * allows it: "madvise" or "always" in
 * /sys/kernel/mm/transparent_hugepage/enabled) and gives it back to the
 * allocator, which carves the next allocations from it: the tree is built
 * in a few large pages instead of thousands of small ones. The allocator
 * keeps that memory (it is not trimmed) until the process exits.
 *
 * For short-lived commands only, never the server: it changes the C
 * library's allocation thresholds for the whole process. Outside glibc, or
 * when another allocator serves malloc (a sanitizer's), it does nothing.
 * Not thread-safe: call it before starting threads. */
#ifndef CW_BASE_HEAP_H
#define CW_BASE_HEAP_H

#include <stddef.h>

#define HEAP_PREPARE_MAX ((size_t)30 << 20)

/* Returns the bytes advised (0 when nothing was done: bytes under 4 MiB,
 * another allocator, or the advice refused). */
size_t heap_prepare(size_t bytes);

#endif
