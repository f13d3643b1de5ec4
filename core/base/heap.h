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
 * Not thread-safe: call it before starting threads.
 *
 * heap_keep is the server's counterpart: memory freed at the end of one
 * request stays with the allocator for the next instead of going back to
 * the kernel, so a large answer built again and again (a document
 * converted, a page of search results) works in pages already faulted in.
 * By default glibc unmaps a freed block of more than 128 KiB (a threshold it
 * raises by itself up to 32 MiB, as blocks are freed) and gives back the
 * free memory at the top of a heap past twice that threshold: whether the
 * next request gets its memory back then depends on what else happens to be
 * allocated above it (an answer held for its audit record, another
 * thread's work), and each time it does not, every page is faulted in
 * again. heap_keep(bytes) makes it fixed: blocks up to bytes (at most
 * HEAP_KEEP_MAX) come from the heaps, and each heap (glibc's arenas: one
 * per thread at most, 8 per core at most) keeps up to bytes of free memory
 * at its top. Same conditions as heap_prepare (call it before starting
 * threads; it does nothing outside glibc or under a sanitizer's allocator),
 * and heap_prepare must not be called after it. */
#ifndef CW_BASE_HEAP_H
#define CW_BASE_HEAP_H

#include <stddef.h>

#define HEAP_PREPARE_MAX ((size_t)30 << 20)

/* Returns the bytes advised (0 when nothing was done: bytes under 4 MiB,
 * another allocator, or the advice refused). */
size_t heap_prepare(size_t bytes);

/* The largest block heap_keep can keep from being unmapped: glibc's own cap
 * on its mapping threshold. */
#define HEAP_KEEP_MAX ((size_t)32 << 20)

/* Returns the bytes each heap now keeps (bytes, capped at HEAP_KEEP_MAX;
 * 0 when nothing was done: another allocator, or the C library refused). */
size_t heap_keep(size_t bytes);

#endif
