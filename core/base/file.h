/* file — reading a whole file into memory (the configuration, a test's
 * fixtures, a benchmark's inputs).
 *
 * Threads: no shared state. */
#ifndef CW_BASE_FILE_H
#define CW_BASE_FILE_H

#include <stddef.h>

/* Reads the regular file at path, of at most max bytes, into a NUL-terminated
 * buffer the caller frees; *len gets its length. NULL when it cannot be
 * opened, is not a regular file, is larger than max or memory runs out; why
 * (whylen bytes, may be NULL) then says which. */
char *file_read_all(const char *path, size_t max, size_t *len, char *why, size_t whylen);

#endif
