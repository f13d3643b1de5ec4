/* file — reading a whole file into memory, writing one durably. */
#include "base/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

char *file_read_all(const char *path, size_t max, size_t *len, char *why, size_t whylen)
{
	char ignored[8];
	if (!why) {
		why = ignored;
		whylen = sizeof ignored;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, whylen, "%s", strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		snprintf(why, whylen, "not a regular file of at most %zu bytes", max);
		fclose(f);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(why, whylen, "out of memory");
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, (size_t)st.st_size, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

int file_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int file_write_durable(const char *path, const void *data, size_t len, char *why, size_t whylen)
{
	char tmp[4200], dir[4200];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		snprintf(why, whylen, "%s: path too long", path);
		return -1;
	}
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	const char *step = "create";
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd >= 0 ? 0 : -1;
	for (const char *p = data; rc == 0 && len;) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			step = "write";
			rc = -1;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (rc == 0 && fsync(fd) != 0)
		step = "fsync", rc = -1;
	int saved = errno;
	if (fd >= 0 && close(fd) != 0 && rc == 0)
		step = "close", rc = -1, saved = errno;
	if (rc == 0 && rename(tmp, path) != 0)
		step = "rename", rc = -1, saved = errno;
	else if (rc == 0 && file_sync_dir(dir) != 0)
		step = "fsync the directory of", rc = -1, saved = errno;
	if (rc != 0) {
		if (strcmp(step, "fsync the directory of") != 0)
			unlink(tmp);
		snprintf(why, whylen, "cannot %s %s: %s", step, !strcmp(step, "create") ? tmp : path, strerror(saved));
	}
	return rc;
}
