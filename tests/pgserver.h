/* A real PostgreSQL server for tests (header-only): Debian's postgresql
 * package, initdb'd into a fresh temporary directory and started with
 * pg_ctl on 127.0.0.1 and a free port (a Unix socket in the same
 * directory), stopped by its postmaster's PID and removed at the end.
 * PostgreSQL refuses to run as root: as root the server runs as the user
 * "nobody" (runuser), owning its directory.
 *
 * pg_server_start fills conninfo (a libpq connection string for the
 * database "postgres", user "cw", trust authentication on loopback only);
 * -1 with the reason in why when the server binaries are missing or the
 * start failed (the test then skips or fails, as it chooses).
 * pg_server_sql runs SQL through psql; pg_server_kill stops the server
 * abruptly (SIGQUIT: no checkpoint, as a crash) and pg_server_start_again
 * starts it on the same port and data. A guardian process stops the
 * server and removes its directory if the test process dies first (a
 * crash, a failed assertion that skips the clean-up). Not thread-safe. */
#ifndef CW_TESTS_PGSERVER_H
#define CW_TESTS_PGSERVER_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct pg_server {
	char bindir[256];
	char dir[128]; /* the temporary directory: data/, the socket, log */
	int port;
	char conninfo[256];
	char why[512];
	int guard_fd;   /* write end of the guardian's pipe; -1 none */
	pid_t guardian; /* stops the server when the test process dies */
};

static inline int pgs_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Runs argv (as "nobody" when root); 0 when it exited 0. Output goes to log. */
static inline int pgs_run_as(const struct pg_server *p, char *const argv[], const char *log)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (log) {
			FILE *f = freopen(log, "a", stdout);
			(void)f;
			dup2(1, 2);
		}
		if (geteuid() == 0) {
			char *args[32];
			int n = 0;
			args[n++] = "runuser";
			args[n++] = "-u";
			args[n++] = "nobody";
			args[n++] = "--";
			for (int i = 0; argv[i] && n < 31; i++)
				args[n++] = argv[i];
			args[n] = NULL;
			execvp("runuser", args);
		} else {
			execv(argv[0], argv);
		}
		_exit(127);
	}
	(void)p;
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static inline int pgs_spawn_server(struct pg_server *p)
{
	char ctl[300], data[160], log[160], opts[300];
	snprintf(ctl, sizeof ctl, "%s/pg_ctl", p->bindir);
	snprintf(data, sizeof data, "%s/data", p->dir);
	snprintf(log, sizeof log, "%s/server.log", p->dir);
	snprintf(opts, sizeof opts, "-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200 -c fsync=on",
		 p->port, p->dir);
	char *argv[] = {ctl, "-D", data, "-o", opts, "-l", log, "-w", "-t", "60", "start", NULL};
	char ctl_log[160];
	snprintf(ctl_log, sizeof ctl_log, "%s/pg_ctl.log", p->dir);
	if (pgs_run_as(p, argv, ctl_log) != 0) {
		snprintf(p->why, sizeof p->why, "pg_ctl start failed (see %s)", log);
		return -1;
	}
	return 0;
}

static inline void pgs_signal_wait(struct pg_server *p, int sig);
static inline void pgs_remove_tree(const char *path);

/* Forks the guardian: it waits for the end of its pipe (the test process
 * closed it or died), then stops the server by its PID and removes the
 * directory (nothing left to do after pg_server_stop). */
static inline void pgs_start_guardian(struct pg_server *p)
{
	int fds[2];
	p->guard_fd = -1;
	if (pipe2(fds, O_CLOEXEC) != 0)
		return;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		close(fds[1]);
		char c;
		for (;;) {
			ssize_t n = read(fds[0], &c, 1);
			if (n > 0 || (n < 0 && errno == EINTR))
				continue;
			break;
		}
		if (p->dir[0] && access(p->dir, F_OK) == 0) {
			pgs_signal_wait(p, SIGINT);
			pgs_remove_tree(p->dir);
		}
		_exit(0);
	}
	close(fds[0]);
	p->guard_fd = fds[1];
	p->guardian = pid;
}

static inline int pg_server_start(struct pg_server *p)
{
	memset(p, 0, sizeof *p);
	p->guard_fd = -1;
	glob_t g;
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		snprintf(p->why, sizeof p->why, "PostgreSQL server binaries not installed (tools/deps.sh test)");
		return -1;
	}
	snprintf(p->bindir, sizeof p->bindir, "%.*s", (int)(strlen(g.gl_pathv[g.gl_pathc - 1]) - strlen("/initdb")),
		 g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	snprintf(p->dir, sizeof p->dir, "/tmp/cw-pg-XXXXXX");
	if (!mkdtemp(p->dir)) {
		snprintf(p->why, sizeof p->why, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("nobody");
		if (!pw || chown(p->dir, pw->pw_uid, pw->pw_gid) != 0) {
			snprintf(p->why, sizeof p->why, "cannot give %s to the user nobody", p->dir);
			return -1;
		}
	}
	char initdb[300], data[160], log[160];
	snprintf(initdb, sizeof initdb, "%s/initdb", p->bindir);
	snprintf(data, sizeof data, "%s/data", p->dir);
	snprintf(log, sizeof log, "%s/initdb.log", p->dir);
	char *argv[] = {initdb, "-D", data, "-U", "cw", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", NULL};
	if (pgs_run_as(p, argv, log) != 0) {
		snprintf(p->why, sizeof p->why, "initdb failed (see %s)", log);
		return -1;
	}
	p->port = pgs_free_port();
	if (p->port <= 0 || pgs_spawn_server(p) != 0)
		return -1;
	snprintf(p->conninfo, sizeof p->conninfo, "host=127.0.0.1 port=%d user=cw dbname=postgres connect_timeout=5",
		 p->port);
	pgs_start_guardian(p);
	return 0;
}

/* The postmaster's PID (first line of data/postmaster.pid), or -1. */
static inline pid_t pg_server_pid(const struct pg_server *p)
{
	char path[200];
	snprintf(path, sizeof path, "%s/data/postmaster.pid", p->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long pid = -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

/* Signals the postmaster and waits (up to 60 s) until it is gone. */
static inline void pgs_signal_wait(struct pg_server *p, int sig)
{
	pid_t pid = pg_server_pid(p);
	if (pid <= 0)
		return;
	kill(pid, sig);
	for (int i = 0; i < 6000 && kill(pid, 0) == 0; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* A crash: no shutdown checkpoint, clients cut off. */
static inline void pg_server_kill(struct pg_server *p)
{
	pgs_signal_wait(p, SIGQUIT);
	char path[200];
	snprintf(path, sizeof path, "%s/data/postmaster.pid", p->dir);
	unlink(path);
}

static inline int pg_server_start_again(struct pg_server *p) { return pgs_spawn_server(p); }

/* Runs sql in the database with psql (stops at the first error). */
static inline int pg_server_sql(const struct pg_server *p, const char *sql)
{
	char psql[300];
	snprintf(psql, sizeof psql, "%s/psql", p->bindir);
	if (access(psql, X_OK) != 0)
		snprintf(psql, sizeof psql, "/usr/bin/psql");
	char conn[300];
	snprintf(conn, sizeof conn, "%s", p->conninfo);
	char *argv[] = {psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conn, "-c", (char *)sql, NULL};
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		if (nul >= 0)
			dup2(nul, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static inline void pgs_remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char sub[1024];
			if (snprintf(sub, sizeof sub, "%.700s/%.255s", path, e->d_name) < (int)sizeof sub)
				pgs_remove_tree(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* Stops the server (fast shutdown, by its PID) and removes its directory. */
static inline void pg_server_stop(struct pg_server *p)
{
	if (!p->dir[0])
		return;
	pgs_signal_wait(p, SIGINT);
	pgs_remove_tree(p->dir);
	p->dir[0] = '\0';
	if (p->guard_fd >= 0) {
		close(p->guard_fd);
		p->guard_fd = -1;
		while (waitpid(p->guardian, NULL, 0) < 0 && errno == EINTR)
			;
	}
}

#endif
