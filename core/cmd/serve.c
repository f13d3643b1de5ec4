/* serve — run the gateway until SIGINT or SIGTERM. */
#include "cmd/cmd.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "base/heap.h"

static const char usage_serve[] =
	"usage: crosswalk serve [-c FILE] [--plugins DIR]\n"
	"\n"
	"Runs the gateway in the foreground until SIGTERM or SIGINT, then stops\n"
	"accepting connections, lets requests in flight finish (up to\n"
	"limits.shutdown_grace_ms, or until a second signal) and exits 0. Requests\n"
	"still running then are cut off: each is logged and the exit code is 3.\n"
	"SIGHUP is logged and ignored.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default: $CROSSWALK_CONFIG,\n"
	"                      else the one 'crosswalk version' names)\n"
	"  --plugins DIR       also load the plugins in DIR (after plugin_dir)\n"
	"  -h, --help          this help\n"
	"\n"
	"environment:\n"
	"  CROSSWALK_CONFIG    configuration file when -c is not given\n"
	"  CROSSWALK_LISTEN    overrides \"listen\" (host:port; port 0 = any free port)\n"
	"\n"
	"exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error\n"
	"(a refused plugin is a configuration error), 3 stopped with requests cut off\n";

/* Creates path and its missing parents, each 0700: the data directory holds
 * health records, for the gateway's user alone. An existing directory keeps
 * the mode its owner gave it. */
static int make_dirs(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_cut_off(void *ctx, const char *method, const char *path, const char *request_id)
{
	(void)ctx;
	log_event(LOG_ERROR, "request_cut_off", "request still running at the end of the shutdown grace; cut off",
		  "request_id", request_id, "method", method, "path", path, (const char *)NULL);
}

int cmd_serve(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
			fputs(usage_serve, stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--plugins") == 0 && i + 1 < argc && !plugins_dir) {
			plugins_dir = argv[++i];
		} else {
			fprintf(stderr, "crosswalk serve: unexpected argument '%s'\n\n%s", argv[i], usage_serve);
			return EXIT_USAGE;
		}
	}
	/* memory freed after one request stays for the next (base/heap.h,
	 * docs/limits.md); before any thread starts */
	heap_keep(HEAP_KEEP_MAX);
	struct config cfg;
	char err[8192];
	int lrc = cmd_load_config(&cfg, path, plugins_dir);
	if (lrc != 0)
		return lrc;
	if (config_check_exposure(&cfg, err, sizeof err) != 0 || config_check_tls_files(&cfg, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk: configuration error: %s\n", err);
		config_release(&cfg);
		return EXIT_USAGE;
	}
	if (make_dirs(cfg.data_dir) != 0) {
		fprintf(stderr, "crosswalk: cannot create data directory %s: %s\n", cfg.data_dir, strerror(errno));
		config_release(&cfg);
		return EXIT_RUNTIME;
	}

	/* Termination signals are taken synchronously by this thread only. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = 0;
	struct app app;
	if (app_init(&app, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk: %s\n", err);
		rc = EXIT_USAGE;
		goto out_app;
	}
	/* On a shared database every read waits on the network (nothing is
	 * cached there, docs/scaling.md): by default four workers per core keep
	 * the database and the cores busy while some wait. */
	if (cfg.threads == 0 && cfg.store.backend && strcmp(cfg.store.backend, "postgresql") == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg.threads = 4 * (unsigned)(n > 0 ? n : 1);
	}
	struct http_server *srv = http_server_start(&cfg, (struct http_dispatch){app_dispatch, app_finish, &app, app_refused}, err,
						    sizeof err);
	if (!srv) {
		fprintf(stderr, "crosswalk: %s\n", err);
		rc = EXIT_RUNTIME;
		goto out_app;
	}
	char addr[300], port[16];
	snprintf(port, sizeof port, "%u", http_server_port(srv));
	snprintf(addr, sizeof addr, cfg.listen_ipv6 ? "[%s]:%s" : "%s:%s", cfg.listen_host, port);
	log_event(LOG_INFO, "listening", "Crosswalk is serving", "address", addr, "port", port, "version",
		  CW_VERSION, (const char *)NULL);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0 || sig == SIGHUP)
		if (sig == SIGHUP) {
			log_event(LOG_INFO, "signal_ignored", "SIGHUP ignored: the configuration is read at start only",
				  (const char *)NULL);
			sig = 0;
		}
	log_event(LOG_INFO, "shutdown", "stopping: no new connections; waiting for requests in flight",
		  "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", (const char *)NULL);
	atomic_store(&app.draining, true);
	http_server_quiesce(srv);
	int64_t until = mono_ms() + (int64_t)cfg.limits.shutdown_grace_ms;
	while (http_server_inflight(srv) > 0 && mono_ms() < until) {
		struct timespec ts = {0, 20 * 1000000};
		siginfo_t si;
		int got = sigtimedwait(&sigs, &si, &ts);
		if (got == SIGHUP) {
			log_event(LOG_INFO, "signal_ignored", "SIGHUP ignored while stopping", (const char *)NULL);
		} else if (got > 0) {
			log_event(LOG_WARN, "shutdown", "second signal: stopping now", (const char *)NULL);
			break;
		}
	}
	unsigned left = http_server_inflight(srv);
	if (http_server_each_busy(srv, log_cut_off, NULL) > 0) {
		/* A handler that does not return would keep the server's threads,
		 * and so the process, alive for ever. The store is consistent at
		 * every commit, so leave without waiting: an open transaction is
		 * rolled back when the store is next opened. */
		char lefts[16];
		snprintf(lefts, sizeof lefts, "%u", left);
		log_event(LOG_ERROR, "stopped", "Crosswalk stopped with requests cut off", "unfinished_requests",
			  lefts, (const char *)NULL);
		fflush(NULL);
		_exit(EXIT_CUT_OFF);
	}
	char lefts[16];
	snprintf(lefts, sizeof lefts, "%u", left);
	app_stop_calls(&app);
	http_server_stop(srv);
	log_event(LOG_INFO, "stopped", "Crosswalk stopped", "unfinished_requests", lefts, (const char *)NULL);
out_app:
	app_release(&app);
	config_release(&cfg);
	return rc;
}
