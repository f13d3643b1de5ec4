/* file — reading a whole file into memory (the configuration, a test's
 * fixtures, a benchmark's inputs), and writing one durably (a bulk job's
 * record, spooled access records).
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

/* Makes dir's entries durable (fsync of the directory). 0, or -1 (errno). */
int file_sync_dir(const char *dir);

/* Writes data (len bytes) as the file path (mode 0600), durably and whole or
 * not at all: into path.tmp, fsync'd, renamed to path, the directory
 * fsync'd. 0, or -1 with why (whylen bytes) saying what failed (path.tmp is
 * then removed). */
int file_write_durable(const char *path, const void *data, size_t len, char *why, size_t whylen);

#endif
