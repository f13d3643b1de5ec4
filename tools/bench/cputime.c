/* CPU time measured in nanoseconds (microseconds for children), for the
 * bench sections; clock ticks (10 ms) from /proc/PID/stat are too coarse
 * for spans of a fraction of a second.
 *
 *   cputime pid PID        the CPU time (user + system) a running process
 *                          has used so far, every thread counted including
 *                          those that have ended, in seconds with ns digits
 *                          (the process's CPU-time clock,
 *                          clock_getcpuclockid).
 *   cputime run CMD ARG... runs CMD once (stdout and stderr to /dev/null)
 *                          and prints "CPU WALL" in seconds: the child's
 *                          user + system time from wait4 (microseconds)
 *                          and its wall time.
 * Exit status 2 on a usage or system error, 1 when the command failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double ts_s(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

static int pid_cpu(const char *arg)
{
	char *end;
	long pid = strtol(arg, &end, 10);
	clockid_t clk;
	struct timespec t;
	if (*arg == '\0' || *end != '\0' || pid <= 0) {
		fprintf(stderr, "cputime: not a process id: %s\n", arg);
		return 2;
	}
	int rc = clock_getcpuclockid((pid_t)pid, &clk);
	if (rc != 0 || clock_gettime(clk, &t) != 0) {
		fprintf(stderr, "cputime: process %ld: %s\n", pid, strerror(rc ? rc : errno));
		return 2;
	}
	printf("%.9f\n", ts_s(t));
	return 0;
}

static int run_cpu(char **argv)
{
	struct timespec w0, w1;
	struct rusage ru;
	int status;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("cputime: fork");
		return 2;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) != pid) {
		perror("cputime: wait4");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		     (double)ru.ru_stime.tv_usec / 1e6;
	printf("%.6f %.6f\n", cpu, ts_s(w1) - ts_s(w0));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "pid") == 0)
		return pid_cpu(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "run") == 0)
		return run_cpu(argv + 2);
	fprintf(stderr, "usage: cputime pid PID | cputime run CMD [ARG...]\n");
	return 2;
}
