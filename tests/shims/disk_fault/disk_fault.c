/* Test shim (LD_PRELOAD): a disk the test controls, for the database's
 * write-ahead log (a file whose name ends in "-wal").
 *
 *   CW_DISK_HOLD=PATH  while the file PATH exists, an fsync or fdatasync of
 *                      the log waits (checking every 5 ms) before it runs;
 *                      while one waits, PATH.waiting exists (created when it
 *                      starts waiting, removed when it ends)
 *   CW_DISK_FULL=PATH  while the file PATH exists, a write to the log fails
 *                      with ENOSPC, as on a full disk
 *
 * Without these variables it changes nothing. The commit-queue test
 * (tests/e2e/test_commit_queue.c) holds a commit while writes queue behind
 * it, and fails a commit with a full disk. Built by the Makefile into
 * build/VARIANT/test-shims/, never installed. Threads: any. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);
ssize_t write(int fd, const void *buf, size_t n);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);

static bool exists(const char *path) { return path && *path && access(path, F_OK) == 0; }

static bool is_wal(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n < 4)
		return false;
	path[n] = '\0';
	return strcmp(path + n - 4, "-wal") == 0;
}

static void *next(const char *name) { return dlsym(RTLD_NEXT, name); }

static void hold(int fd)
{
	const char *h = getenv("CW_DISK_HOLD");
	if (!exists(h) || !is_wal(fd))
		return;
	char mark[4200];
	snprintf(mark, sizeof mark, "%s.waiting", h);
	int m = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (m >= 0)
		close(m);
	while (exists(h)) {
		struct timespec ts = {0, 5 * 1000000};
		nanosleep(&ts, NULL);
	}
	unlink(mark);
}

static bool full(int fd) { return exists(getenv("CW_DISK_FULL")) && is_wal(fd); }

typedef int (*sync_fn)(int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

int fsync(int fd)
{
	hold(fd);
	union {
		void *p;
		sync_fn f;
	} u = {.p = next("fsync")};
	return u.f ? u.f(fd) : -1;
}

int fdatasync(int fd)
{
	hold(fd);
	union {
		void *p;
		sync_fn f;
	} u = {.p = next("fdatasync")};
	return u.f ? u.f(fd) : -1;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	if (full(fd)) {
		errno = ENOSPC;
		return -1;
	}
	union {
		void *p;
		write_fn f;
	} u = {.p = next("write")};
	return u.f ? u.f(fd, buf, n) : -1;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (full(fd)) {
		errno = ENOSPC;
		return -1;
	}
	union {
		void *p;
		pwrite_fn f;
	} u = {.p = next("pwrite")};
	return u.f ? u.f(fd, buf, n, off) : -1;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	if (full(fd)) {
		errno = ENOSPC;
		return -1;
	}
	union {
		void *p;
		pwrite_fn f;
	} u = {.p = next("pwrite64")};
	return u.f ? u.f(fd, buf, n, off) : -1;
}
