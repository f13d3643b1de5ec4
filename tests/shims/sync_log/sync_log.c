/* Test shim (LD_PRELOAD): records every fsync and fdatasync a process makes.
 *
 * Each call appends one line, the path of the file synced (read from
 * /proc/self/fd), to the file named by CW_SYNC_LOG, before the real call
 * runs and returns its result. Without CW_SYNC_LOG it records nothing. The
 * durability test (tests/e2e/test_durability.c) preloads it into the gateway
 * and counts the syncs of the database's write-ahead log per acknowledged
 * write. Built by the Makefile into build/VARIANT/test-shims/, never
 * installed. Threads: any; each line is written with one write(2) on an
 * O_APPEND descriptor. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fsync(int fd);
int fdatasync(int fd);

static void record(int fd, const char *call)
{
	const char *log = getenv("CW_SYNC_LOG");
	if (!log || !*log)
		return;
	char link[64], path[4096], line[4200];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	path[n > 0 ? n : 0] = '\0';
	int len = snprintf(line, sizeof line, "%s %s\n", call, path);
	int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (out < 0)
		return;
	if (len > 0 && write(out, line, (size_t)len) < 0) {
		/* nothing to do: the count comes out short and the test fails */
	}
	close(out);
}

typedef int (*sync_fn)(int);

static sync_fn next(const char *name)
{
	union {
		void *p;
		sync_fn f;
	} u = {.p = dlsym(RTLD_NEXT, name)};
	return u.f;
}

int fsync(int fd)
{
	record(fd, "fsync");
	sync_fn f = next("fsync");
	return f ? f(fd) : -1;
}

int fdatasync(int fd)
{
	record(fd, "fdatasync");
	sync_fn f = next("fdatasync");
	return f ? f(fd) : -1;
}
