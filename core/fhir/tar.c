/* tar — a bounded tar reader (see tar.h). */
#include "fhir/tar.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 512

/* Reads exactly n bytes: 1 done, 0 the source ended before any, -2 it ended
 * part way, -1 error. */
static int read_full(tar_read_fn read, void *ctx, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		long r = read(ctx, (char *)buf + got, n - got);
		if (r < 0)
			return -1;
		if (r == 0)
			return got ? -2 : 0;
		got += (size_t)r;
	}
	return 1;
}

/* An octal field (NUL- or space-terminated, leading spaces allowed). */
static bool octal(const unsigned char *f, size_t n, uint64_t *out)
{
	size_t i = 0;
	uint64_t v = 0;
	while (i < n && f[i] == ' ')
		i++;
	bool any = false;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return false;
		v = v * 8 + (uint64_t)(f[i] - '0');
		any = true;
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return false;
	*out = v;
	return any;
}

static bool checksum_ok(const unsigned char *h)
{
	uint64_t want;
	if (!octal(h + 148, 8, &want))
		return false;
	uint64_t sum = 0;
	for (size_t i = 0; i < BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum == want;
}

static bool all_zero(const unsigned char *h)
{
	for (size_t i = 0; i < BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

/* Whether name is relative and holds no "..": the only names accepted. */
static bool safe_name(const char *name)
{
	if (!name[0] || name[0] == '/')
		return false;
	for (const char *s = name; *s;) {
		size_t l = strcspn(s, "/");
		if (l == 2 && s[0] == '.' && s[1] == '.')
			return false;
		s += l;
		if (*s == '/')
			s++;
	}
	return true;
}

/* Reads the size bytes of an entry's content, rounded up to blocks, into a
 * new NUL-terminated buffer. */
static char *read_content(tar_read_fn read, void *ctx, uint64_t size, char *err, size_t errlen)
{
	uint64_t padded = (size + BLOCK - 1) / BLOCK * BLOCK;
	char *buf = malloc((size_t)padded + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int r = read_full(read, ctx, buf, (size_t)padded);
	if (r != 1) {
		snprintf(err, errlen, r == -1 ? "cannot read the archive" : "the archive is cut short");
		free(buf);
		return NULL;
	}
	buf[size] = '\0';
	return buf;
}

/* The "path" record of pax extended header data, into name. */
static bool pax_path(const char *data, size_t n, char *name, size_t namelen)
{
	size_t i = 0;
	while (i < n) {
		size_t len = 0, j = i;
		while (j < n && data[j] >= '0' && data[j] <= '9') {
			len = len * 10 + (size_t)(data[j++] - '0');
			if (len > n)
				return false;
		}
		if (j >= n || data[j] != ' ' || len <= j - i || len > n - i)
			return false;
		const char *kv = data + j + 1, *end = data + i + len;
		if (end[-1] != '\n')
			return false;
		if ((size_t)(end - kv) > 5 && !memcmp(kv, "path=", 5)) {
			size_t vl = (size_t)(end - 1 - (kv + 5));
			if (vl >= namelen)
				return false;
			memcpy(name, kv + 5, vl);
			name[vl] = '\0';
		}
		i += len;
	}
	return true;
}

int tar_each(tar_read_fn read, void *ctx, const struct tar_limits *lim, tar_file_fn on_file, void *arg, char *err,
	     size_t errlen)
{
	unsigned char h[BLOCK];
	char longname[TAR_MAX_NAME + 1] = "";
	size_t entries = 0;
	uint64_t total = 0;
	for (;;) {
		int r = read_full(read, ctx, h, BLOCK);
		if (r == -1) {
			snprintf(err, errlen, "cannot read the archive");
			return -1;
		}
		if (r == -2) {
			snprintf(err, errlen,
				 entries ? "the archive is cut short" : "entry 1: not a tar header (too short)");
			return -1;
		}
		if (r == 0 || all_zero(h)) {
			if (r == 0 && entries == 0) {
				snprintf(err, errlen, "an empty archive");
				return -1;
			}
			if (r == 0 && longname[0]) {
				snprintf(err, errlen, "the archive is cut short");
				return -1;
			}
			return 0; /* the end: two zero blocks (or the source's end) */
		}
		if (++entries > lim->max_entries) {
			snprintf(err, errlen, "more than %zu entries", lim->max_entries);
			return -1;
		}
		uint64_t size;
		if (!checksum_ok(h) || !octal(h + 124, 12, &size)) {
			snprintf(err, errlen, "entry %zu: not a tar header (checksum or size)", entries);
			return -1;
		}
		char type = (char)h[156];
		if (type == 'L' || type == 'x') {
			/* a GNU long name, or a pax extended header, for the next entry */
			if (size > TAR_MAX_NAME * 4) {
				snprintf(err, errlen, "entry %zu: a long name or pax header of %llu bytes", entries,
					 (unsigned long long)size);
				return -1;
			}
			char *data = read_content(read, ctx, size, err, errlen);
			if (!data)
				return -1;
			bool ok = true;
			if (type == 'L') {
				size_t n = strnlen(data, (size_t)size);
				ok = n <= TAR_MAX_NAME;
				if (ok)
					memcpy(longname, data, n + 1);
			} else {
				ok = pax_path(data, (size_t)size, longname, sizeof longname);
			}
			free(data);
			if (!ok) {
				snprintf(err, errlen, "entry %zu: a long name or pax header that does not parse",
					 entries);
				return -1;
			}
			continue;
		}
		if (type == 'g') {
			/* pax global header: nothing the reader needs */
			if (size > lim->max_entry_bytes) {
				snprintf(err, errlen, "entry %zu: a pax global header too large", entries);
				return -1;
			}
			char *data = read_content(read, ctx, size, err, errlen);
			if (!data)
				return -1;
			free(data);
			continue;
		}
		char name[TAR_MAX_NAME + 1];
		if (longname[0]) {
			memcpy(name, longname, sizeof name);
			longname[0] = '\0';
		} else {
			/* ustar: prefix "/" name, each NUL-terminated or full */
			size_t nl = strnlen((const char *)h, 100), pl = 0;
			if (!memcmp(h + 257, "ustar", 6)) /* POSIX "ustar\0"; GNU's "ustar " has no prefix */
				pl = strnlen((const char *)h + 345, 155);
			size_t o = 0;
			if (pl) {
				memcpy(name, h + 345, pl);
				o = pl;
				name[o++] = '/';
			}
			memcpy(name + o, h, nl);
			name[o + nl] = '\0';
		}
		if (!safe_name(name)) {
			snprintf(err, errlen, "entry %zu: the name \"%.200s\" is absolute or holds \"..\"", entries,
				 name);
			return -1;
		}
		bool file = type == '0' || type == '\0' || type == '7';
		if (file && size > lim->max_entry_bytes) {
			snprintf(err, errlen, "%.200s: %llu bytes, more than %zu", name, (unsigned long long)size,
				 lim->max_entry_bytes);
			return -1;
		}
		/* links, directories, devices: skipped, with any content */
		if (!file && size > lim->max_entry_bytes) {
			snprintf(err, errlen, "%.200s: an entry of %llu bytes", name, (unsigned long long)size);
			return -1;
		}
		total += size;
		if (total > lim->max_total_bytes) {
			snprintf(err, errlen, "more than %zu bytes of content", lim->max_total_bytes);
			return -1;
		}
		char *data = read_content(read, ctx, size, err, errlen);
		if (!data)
			return -1;
		int rc = file ? on_file(arg, name, data, (size_t)size) : 0;
		free(data);
		if (rc)
			return rc;
	}
}
