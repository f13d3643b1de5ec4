/* tar — a small, bounded reader of tar archives (POSIX ustar, with GNU long
 * names and pax path records), for FHIR packages (package.tgz, once
 * gunzipped: see fhir_xml_file_open).
 *
 * The archive is pulled from a source (a read function) in 512-byte blocks
 * and never held whole: each regular file's content is read into one buffer
 * and handed to the caller's function, then freed. Directories, links and
 * other entry types are skipped (never followed).
 *
 * Refused (the whole archive fails, with a reason): a name that is absolute
 * or holds a ".." segment, a header whose checksum is wrong or whose fields
 * do not parse, a file larger than max_entry_bytes, more than max_entries
 * entries, more than max_total_bytes of content, a long name or pax record
 * larger than TAR_MAX_NAME bytes, and an archive cut short.
 *
 * Threads: reentrant; no shared state. Errors: -1 with a reason in err. */
#ifndef CW_TAR_H
#define CW_TAR_H

#include <stddef.h>

#define TAR_MAX_NAME 1024 /* longest entry name accepted */

/* Reads up to n bytes into buf: the number read, 0 at the end, -1 on error. */
typedef long (*tar_read_fn)(void *ctx, void *buf, size_t n);

struct tar_limits {
	size_t max_entries;     /* headers read, every type counted */
	size_t max_entry_bytes; /* one file's content */
	size_t max_total_bytes; /* all files' content */
};

/* Called for each regular file: its name (relative, '/'-separated) and its
 * content (data is NUL-terminated past size, and valid only during the
 * call). Return 0 to go on, non-zero to stop: tar_each then returns that
 * value. */
typedef int (*tar_file_fn)(void *arg, const char *name, const char *data, size_t size);

/* Reads the archive from read(ctx, ...) and calls on_file for each regular
 * file in order. Returns 0 at the archive's end, -1 with a reason in err, or
 * on_file's non-zero value. */
int tar_each(tar_read_fn read, void *ctx, const struct tar_limits *lim, tar_file_fn on_file, void *arg, char *err,
	     size_t errlen);

#endif
