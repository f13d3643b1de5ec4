/* What the benchmark programs share (header-only). */
#ifndef CW_BENCH_UTIL_H
#define CW_BENCH_UTIL_H

#include <stdint.h>

#include "base/file.h"

/* Reads the whole file at path into a NUL-terminated buffer the caller frees;
 * *len gets its length. NULL when the file cannot be opened or read
 * (base/file.h, shared with the tests). */
static inline char *bench_read_file(const char *path, size_t *len)
{
	return file_read_all(path, SIZE_MAX, len, NULL, 0);
}

#endif
