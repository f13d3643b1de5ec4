/* crosswalk — command-line entry point.
 *
 * Exit codes: 0 success; 1 runtime failure; 2 usage or configuration error. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app.h"
#include "config.h"
#include "http.h"
#include "log.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_main[] =
	"usage: crosswalk COMMAND [OPTIONS]\n"
	"\n"
	"Crosswalk is a plugin-based HL7 FHIR R4 gateway.\n"
	"\n"
	"commands:\n"
	"  serve [-c FILE]     run the gateway\n"
	"  version             print the version\n"
	"\n"
	"Run 'crosswalk COMMAND --help' for a command's options.\n"
	"\n"
	"exit codes: 0 success, 1 runtime failure, 2 usage or configuration error\n";

static const char usage_serve[] =
	"usage: crosswalk serve [-c FILE]\n"
	"\n"
	"Runs the gateway in the foreground until SIGTERM or SIGINT, then stops\n"
	"accepting connections, lets requests in flight finish (up to\n"
	"limits.shutdown_grace_ms) and exits 0.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default: $CROSSWALK_CONFIG,\n"
	"                      else conf/crosswalk.json)\n"
	"  -h, --help          this help\n"
	"\n"
	"environment:\n"
	"  CROSSWALK_CONFIG    configuration file when -c is not given\n"
	"  CROSSWALK_LISTEN    overrides \"listen\" (host:port; port 0 = any free port)\n"
	"\n"
	"exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error\n";

static const char usage_version[] =
	"usage: crosswalk version\n"
	"\n"
	"Prints the version of Crosswalk and the FHIR version it speaks.\n"
	"\n"
	"exit codes: 0 success, 2 usage error\n";

static bool is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

static int cmd_version(int argc, char **argv)
{
	if (argc > 1) {
		if (is_help(argv[1])) {
			fputs(usage_version, stdout);
			return 0;
		}
		fputs(usage_version, stderr);
		return EXIT_USAGE;
	}
	printf("crosswalk %s (FHIR 4.0.1)\n", CW_VERSION);
	return 0;
}

static int make_dirs(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0750) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_serve(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			fputs(usage_serve, stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else {
			fprintf(stderr, "crosswalk serve: unexpected argument '%s'\n\n%s", argv[i], usage_serve);
			return EXIT_USAGE;
		}
	}
	if (!path)
		path = getenv("CROSSWALK_CONFIG");
	if (!path || !*path)
		path = "conf/crosswalk.json";

	struct config cfg;
	char err[1024];
	if (config_load(&cfg, path, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk: configuration error: %s\n", err);
		return EXIT_USAGE;
	}
	log_set_level(cfg.log_level);
	if (!config_host_is_loopback(cfg.listen_host)) {
		fprintf(stderr,
			"crosswalk: configuration error: %s: listen: %s is not a loopback address; serving "
			"beyond loopback requires authentication, and this version has none to configure\n",
			cfg.source, cfg.listen);
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
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = 0;
	struct app app;
	if (app_init(&app, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk: %s\n", err);
		rc = EXIT_USAGE;
		goto out_cfg;
	}
	struct http_server *srv = http_server_start(&cfg, (struct http_dispatch){app_dispatch, &app}, err,
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
	while (sigwait(&sigs, &sig) != 0)
		;
	log_event(LOG_INFO, "shutdown", "stopping: no new connections; waiting for requests in flight",
		  "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", (const char *)NULL);
	atomic_store(&app.draining, true);
	http_server_quiesce(srv);
	int64_t until = mono_ms() + (int64_t)cfg.limits.shutdown_grace_ms;
	while (http_server_inflight(srv) > 0 && mono_ms() < until) {
		struct timespec ts = {0, 20 * 1000000};
		siginfo_t si;
		if (sigtimedwait(&sigs, &si, &ts) > 0) {
			log_event(LOG_WARN, "shutdown", "second signal: stopping now", (const char *)NULL);
			break;
		}
	}
	unsigned left = http_server_inflight(srv);
	char lefts[16];
	snprintf(lefts, sizeof lefts, "%u", left);
	http_server_stop(srv);
	log_event(LOG_INFO, "stopped", "Crosswalk stopped", "unfinished_requests", lefts, (const char *)NULL);
out_app:
	app_release(&app);
out_cfg:
	config_release(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (is_help(cmd)) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	fprintf(stderr, "crosswalk: unknown command '%s'\n\n%s", cmd, usage_main);
	return EXIT_USAGE;
}
