/* What the benchmark programs share (header-only). */
#ifndef CW_BENCH_UTIL_H
#define CW_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Reads the whole file at path into a NUL-terminated buffer the caller frees;
 * *len gets its length. NULL when the file cannot be opened or read. */
static inline char *bench_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct stat st;
	char *buf = NULL;
	if (fstat(fileno(f), &st) == 0 && st.st_size >= 0 && (buf = malloc((size_t)st.st_size + 1)) != NULL) {
		size_t n = fread(buf, 1, (size_t)st.st_size, f);
		buf[n] = '\0';
		*len = n;
	}
	fclose(f);
	return buf;
}

#endif
