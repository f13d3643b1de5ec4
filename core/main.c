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

#include "api/gather.h"
#include "app.h"
#include "config/config.h"
#include "fhir/fhir_io.h"
#include "base/fjson.h"
#include "http/http.h"
#include "base/log.h"
#include "plugin/plugin_host.h"
#include "fhir/terminology.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_main[] =
	"usage: crosswalk COMMAND [OPTIONS]\n"
	"\n"
	"Crosswalk is a plugin-based HL7 FHIR R4 gateway.\n"
	"\n"
	"commands:\n"
	"  serve [-c FILE] [--plugins DIR]     run the gateway\n"
	"  plugins [-c FILE] [--plugins DIR]   list the plugins, or why they are refused\n"
	"  map --from|--to FORMAT [FILE|-]     map a document through a plugin\n"
	"  convert [--to json|xml] [FILE|-]    convert a FHIR resource between JSON and XML\n"
	"  billing --from DATE --to DATE [--csv]  print the billing extract of a period\n"
	"  version                             print the version\n"
	"\n"
	"Run 'crosswalk COMMAND --help' for a command's options.\n"
	"\n"
	"exit codes: 0 success, 1 runtime failure, 2 usage or configuration error\n";

static const char usage_serve[] =
	"usage: crosswalk serve [-c FILE] [--plugins DIR]\n"
	"\n"
	"Runs the gateway in the foreground until SIGTERM or SIGINT, then stops\n"
	"accepting connections, lets requests in flight finish (up to\n"
	"limits.shutdown_grace_ms) and exits 0.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (default: $CROSSWALK_CONFIG,\n"
	"                      else conf/crosswalk.json)\n"
	"  --plugins DIR       also load the plugins in DIR (after plugin_dir)\n"
	"  -h, --help          this help\n"
	"\n"
	"environment:\n"
	"  CROSSWALK_CONFIG    configuration file when -c is not given\n"
	"  CROSSWALK_LISTEN    overrides \"listen\" (host:port; port 0 = any free port)\n"
	"\n"
	"exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error\n"
	"(a refused plugin is a configuration error)\n";

static const char usage_plugins[] =
	"usage: crosswalk plugins [-c FILE] [--plugins DIR] [--json]\n"
	"\n"
	"Loads the plugins exactly as 'serve' would (plugin_dir, then --plugins DIR;\n"
	"init, then fini) and lists each one: name, version, file, formats, hooks\n"
	"and operations, or the reason it was refused.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (as for serve)\n"
	"  --plugins DIR       also load the plugins in DIR\n"
	"  --json              print the list as JSON (as GET /plugins answers)\n"
	"  -h, --help          this help\n"
	"\n"
	"exit codes: 0 every plugin accepted, 2 usage or configuration error or a\n"
	"plugin refused\n";

static const char usage_map[] =
	"usage: crosswalk map --from FORMAT [FILE|-] [options]\n"
	"       crosswalk map --to FORMAT [FILE|-] [options]\n"
	"\n"
	"--from maps a native document (FILE, or standard input) to FHIR through the\n"
	"plugin that owns FORMAT, runs the before-store hooks and prints the\n"
	"transaction Bundle. --to maps a FHIR resource or Bundle to FORMAT, after\n"
	"the before-export hooks. Errors are printed as an OperationOutcome on\n"
	"standard error.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (as for serve)\n"
	"  --plugins DIR       also load the plugins in DIR\n"
	"  --media json|csv    the native media type (default: the format's first)\n"
	"  -h, --help          this help\n"
	"\n"
	"exit codes: 0 mapped, 1 the mapping failed, 2 usage or configuration error\n";

static const char usage_convert[] =
	"usage: crosswalk convert [--to json|xml] [--pretty] [-c FILE] [FILE|-]\n"
	"\n"
	"Reads one FHIR R4 resource in JSON or XML (detected from its first byte)\n"
	"from FILE or standard input and writes it in the other format (or the one\n"
	"--to names) to standard output. Decimals keep their exact literal; the\n"
	"narrative is carried verbatim. The input is read with the JSON limits of\n"
	"the configuration (-c or CROSSWALK_CONFIG, else the built-in defaults). Problems are printed as\n"
	"an OperationOutcome on standard error.\n"
	"\n"
	"options:\n"
	"  --to json|xml   output format (default: the other one)\n"
	"  --pretty        indent the output\n"
	"  -c FILE         configuration file\n"
	"\n"
	"exit codes: 0 converted, 1 the input is not valid FHIR, 2 usage error\n";

static const char usage_billing[] =
	"usage: crosswalk billing --from DATE --to DATE [--csv] [-c FILE] [--plugins DIR]\n"
	"\n"
	"Prints the billing extract (docs/formats/billing.md) of the Encounters whose\n"
	"period overlaps DATE..DATE (YYYY-MM-DD), read from the store under the\n"
	"configured data_dir: the same Bundle GET /export/billing?from=&to= maps,\n"
	"through the billing plugin, after the before-export hooks. The store is\n"
	"only read; a data_dir without a store is an error. Errors are printed as an\n"
	"OperationOutcome on standard error.\n"
	"\n"
	"options:\n"
	"  --from DATE, --to DATE   the period (both required)\n"
	"  --csv                    CSV instead of JSON\n"
	"  -c, --config FILE        configuration file (as for serve)\n"
	"  --plugins DIR            also load the plugins in DIR\n"
	"  -h, --help               this help\n"
	"\n"
	"exit codes: 0 printed, 1 the store or the mapping failed, 2 usage or\n"
	"configuration error\n";

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

/* Loads the configuration named by -c / $CROSSWALK_CONFIG / the default,
 * with --plugins DIR recorded in it. Returns 0 or EXIT_USAGE. */
static int load_config(struct config *cfg, const char *path, const char *plugins_dir)
{
	if (!path)
		path = getenv("CROSSWALK_CONFIG");
	if (!path || !*path)
		path = "conf/crosswalk.json";
	char err[1024];
	if (config_load(cfg, path, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk: configuration error: %s\n", err);
		return EXIT_USAGE;
	}
	if (plugins_dir && !(cfg->plugin_dir_extra = strdup(plugins_dir))) {
		fprintf(stderr, "crosswalk: out of memory\n");
		config_release(cfg);
		return EXIT_RUNTIME;
	}
	log_set_level(cfg->log_level);
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
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
	struct config cfg;
	char err[8192];
	int lrc = load_config(&cfg, path, plugins_dir);
	if (lrc != 0)
		return lrc;
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
		goto out_app;
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
	config_release(&cfg);
	return rc;
}

/* Loads code systems and plugins as serve does. Returns NULL after printing
 * why when the profiles cannot be loaded. */
static struct plugin_host *open_plugins(const struct config *cfg, struct terminology **terms)
{
	char err[1024];
	if (!(*terms = app_load_terminology(cfg, err, sizeof err))) {
		fprintf(stderr, "crosswalk: configuration error: %s\n", err);
		return NULL;
	}
	struct plugin_host *h = plugin_host_new(cfg, *terms);
	if (!h) {
		fprintf(stderr, "crosswalk: out of memory\n");
		return NULL;
	}
	plugin_host_scan(h, cfg->plugin_dir);
	if (cfg->plugin_dir_extra)
		plugin_host_scan(h, cfg->plugin_dir_extra);
	plugin_host_start(h);
	return h;
}

static void print_list(const cJSON *o, const char *key, const char *label)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *x;
	printf("  %-11s", label);
	if (!cJSON_GetArraySize(arr))
		printf(" -");
	cJSON_ArrayForEach(x, arr) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(x, "name");
		if (strcmp(key, "formats") == 0) {
			printf(" %s [", name->valuestring);
			const cJSON *m;
			bool first = true;
			cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(x, "media")) {
				printf("%s%s", first ? "" : " ", m->valuestring);
				first = false;
			}
			printf("]%s%s", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "to_fhir")) ? " to-fhir" : "",
			       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "from_fhir")) ? " from-fhir" : "");
		} else if (strcmp(key, "hooks") == 0) {
			printf(" %s(order %d)", cJSON_GetObjectItemCaseSensitive(x, "point")->valuestring,
			       cJSON_GetObjectItemCaseSensitive(x, "order")->valueint);
		} else {
			const cJSON *type = cJSON_GetObjectItemCaseSensitive(x, "type");
			printf(" %s(%s)", name->valuestring, cJSON_IsString(type) ? type->valuestring : "system");
		}
		printf("%s", x->next ? "," : "");
	}
	printf("\n");
}

static int cmd_plugins(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			fputs(usage_plugins, stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--plugins") == 0 && i + 1 < argc && !plugins_dir) {
			plugins_dir = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			fprintf(stderr, "crosswalk plugins: unexpected argument '%s'\n\n%s", argv[i], usage_plugins);
			return EXIT_USAGE;
		}
	}
	struct config cfg;
	int rc = load_config(&cfg, path, plugins_dir);
	if (rc != 0)
		return rc;
	struct terminology *terms = NULL;
	struct plugin_host *h = open_plugins(&cfg, &terms);
	if (!h) {
		terminology_free(terms);
		config_release(&cfg);
		return EXIT_USAGE;
	}
	cJSON *list = plugin_host_describe(h);
	if (!list) {
		rc = EXIT_RUNTIME;
	} else if (json) {
		size_t tlen = 0;
		char *text = fjson_print(list, true, &tlen);
		if (text)
			printf("%.*s\n", (int)tlen, text);
		free(text);
	} else {
		const cJSON *p;
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(list, "plugins")) {
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
			const cJSON *file = cJSON_GetObjectItemCaseSensitive(p, "file");
			const cJSON *refused = cJSON_GetObjectItemCaseSensitive(p, "refused");
			if (refused) {
				printf("%s REFUSED (%s): %s\n", cJSON_IsString(name) ? name->valuestring : "-",
				       file->valuestring, refused->valuestring);
				continue;
			}
			const cJSON *summary = cJSON_GetObjectItemCaseSensitive(p, "summary");
			printf("%s %s (%s)%s%s\n", name->valuestring,
			       cJSON_GetObjectItemCaseSensitive(p, "version")->valuestring, file->valuestring,
			       cJSON_IsString(summary) ? ": " : "", cJSON_IsString(summary) ? summary->valuestring : "");
			print_list(p, "formats", "formats:");
			print_list(p, "hooks", "hooks:");
			print_list(p, "operations", "operations:");
		}
		if (!cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "plugins")))
			printf("no plugins in %s%s%s\n", cfg.plugin_dir, plugins_dir ? " or " : "",
			       plugins_dir ? plugins_dir : "");
	}
	cJSON_Delete(list);
	if (plugin_host_refusals(h)) {
		plugin_host_print_refusals(h, stderr);
		rc = EXIT_USAGE;
	}
	fflush(stdout);
	plugin_host_free(h);
	terminology_free(terms);
	config_release(&cfg);
	return rc;
}

static char *read_all(FILE *f, size_t max, size_t *len)
{
	size_t cap = 65536;
	char *buf = malloc(cap + 1);
	*len = 0;
	size_t r;
	while (buf && (r = fread(buf + *len, 1, cap - *len, f)) > 0) {
		*len += r;
		if (*len == cap) {
			if (cap >= max) {
				free(buf);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[*len] = '\0';
	return buf;
}

static int cmd_map(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL, *from = NULL, *to = NULL, *file = NULL, *media_s = NULL;
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			fputs(usage_map, stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--plugins") == 0 && i + 1 < argc && !plugins_dir) {
			plugins_dir = argv[++i];
		} else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc && !from && !to) {
			from = argv[++i];
		} else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc && !from && !to) {
			to = argv[++i];
		} else if (strcmp(argv[i], "--media") == 0 && i + 1 < argc) {
			media_s = argv[++i];
		} else if (!file && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
			file = argv[i];
		} else {
			fprintf(stderr, "crosswalk map: unexpected argument '%s'\n\n%s", argv[i], usage_map);
			return EXIT_USAGE;
		}
	}
	if ((!from && !to) || (media_s && strcmp(media_s, "json") != 0 && strcmp(media_s, "csv") != 0)) {
		fputs(usage_map, stderr);
		return EXIT_USAGE;
	}
	FILE *in = !file || strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (!in) {
		fprintf(stderr, "crosswalk map: %s: %s\n", file, strerror(errno));
		return EXIT_USAGE;
	}
	struct config cfg;
	int rc = load_config(&cfg, path, plugins_dir);
	if (rc != 0) {
		if (in != stdin)
			fclose(in);
		return rc;
	}
	size_t len = 0;
	char *data = read_all(in, (size_t)cfg.limits.max_body_bytes, &len);
	if (in != stdin)
		fclose(in);
	struct terminology *terms = NULL;
	struct plugin_host *h = data ? open_plugins(&cfg, &terms) : NULL;
	if (!data)
		fprintf(stderr, "crosswalk map: cannot read the input (at most %llu bytes)\n",
			(unsigned long long)cfg.limits.max_body_bytes);
	if (!h || plugin_host_refusals(h)) {
		plugin_host_print_refusals(h, stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	const char *fname = from ? from : to;
	const struct cw_format *f = plugin_host_format(h, fname, NULL);
	if (!f) {
		fprintf(stderr, "crosswalk map: no plugin maps the format '%s'\n", fname);
		rc = EXIT_USAGE;
		goto out;
	}
	enum cw_media media = media_s ? (strcmp(media_s, "csv") == 0 ? CW_MEDIA_CSV : CW_MEDIA_JSON)
				      : (f->media & CW_MEDIA_JSON ? CW_MEDIA_JSON : CW_MEDIA_CSV);
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	int status;
	if (from) {
		cJSON *bundle = NULL;
		status = plugin_host_ingest(h, &ctx, fname, media, data, len, NULL, NULL, &bundle);
		size_t tlen = 0;
		char *text = status == 200 ? fjson_print(bundle, true, &tlen) : NULL;
		if (text)
			printf("%.*s\n", (int)tlen, text);
		free(text);
		cJSON_Delete(bundle);
	} else {
		struct fjson_limits lim;
		fjson_limits_default(&lim);
		struct fjson_error jerr;
		memset(&jerr, 0, sizeof jerr);
		cJSON *input = fjson_parse(data, len, &lim, &jerr);
		char *out = NULL;
		size_t olen = 0;
		if (!input) {
			outcome_add(&oo, OUTCOME_ERROR, "structure", NULL, "line %d, column %d: %s", jerr.line,
				    jerr.column, jerr.message);
			status = 400;
		} else {
			status = plugin_host_export(h, &ctx, fname, media, input, NULL, NULL, &out, &olen);
		}
		if (status == 200)
			fwrite(out, 1, olen, stdout);
		if (status == 200 && (olen == 0 || out[olen - 1] != '\n'))
			putchar('\n');
	}
	if (status != 200) {
		cJSON *oj = outcome_to_json(&oo);
		size_t tlen = 0;
		char *text = oj ? fjson_print(oj, true, &tlen) : NULL;
		if (text)
			fprintf(stderr, "%.*s\n", (int)tlen, text);
		else
			fputs("crosswalk map: failed\n", stderr);
		free(text);
		cJSON_Delete(oj);
		rc = EXIT_RUNTIME;
	}
	outcome_release(&oo);
	arena_release(&arena);
out:
	fflush(stdout);
	plugin_host_free(h);
	terminology_free(terms);
	free(data);
	config_release(&cfg);
	return rc;
}

static void print_outcome(struct outcome *oo, const char *fallback)
{
	cJSON *oj = outcome_to_json(oo);
	size_t tlen = 0;
	char *text = oj ? fjson_print(oj, true, &tlen) : NULL;
	if (text)
		fprintf(stderr, "%.*s\n", (int)tlen, text);
	else
		fprintf(stderr, "%s\n", fallback);
	free(text);
	cJSON_Delete(oj);
}

/* The billing extract of a period, from the store. It gathers with the
 * function GET /export uses (gather_bundle), which reads only
 * app->cfg and app->store: so a struct app with those two (and the plugin
 * host) is enough, without app_init's routes, listener or outbox worker. */
static int cmd_billing(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL, *from = NULL, *to = NULL;
	bool csv = false;
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			fputs(usage_billing, stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--plugins") == 0 && i + 1 < argc && !plugins_dir) {
			plugins_dir = argv[++i];
		} else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc && !from) {
			from = argv[++i];
		} else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc && !to) {
			to = argv[++i];
		} else if (strcmp(argv[i], "--csv") == 0) {
			csv = true;
		} else {
			fprintf(stderr, "crosswalk billing: unexpected argument '%s'\n\n%s", argv[i], usage_billing);
			return EXIT_USAGE;
		}
	}
	if (!from || !to) {
		fprintf(stderr, "crosswalk billing: --from and --to are required\n\n%s", usage_billing);
		return EXIT_USAGE;
	}
	struct config cfg;
	int rc = load_config(&cfg, path, plugins_dir);
	if (rc != 0)
		return rc;
	char err[1024], db[4200];
	struct stat st;
	snprintf(db, sizeof db, "%s/store.db", cfg.data_dir);
	if (stat(db, &st) != 0) {
		fprintf(stderr, "crosswalk billing: no store in %s (data_dir)\n", cfg.data_dir);
		config_release(&cfg);
		return EXIT_RUNTIME;
	}
	struct terminology *terms = NULL;
	struct plugin_host *h = open_plugins(&cfg, &terms);
	struct app app;
	memset(&app, 0, sizeof app);
	if (!h || plugin_host_refusals(h)) {
		plugin_host_print_refusals(h, stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	if (!plugin_host_format(h, "billing", NULL)) {
		fprintf(stderr, "crosswalk billing: no plugin maps the format 'billing'\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if (store_open_sqlite(cfg.data_dir, STORE_OPEN_SHARED, 0, &app.store, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk billing: %s\n", err);
		rc = EXIT_RUNTIME;
		goto out;
	}
	app.cfg = &cfg;
	app.terms = terms;
	app.plugins = h;
	struct outcome oo = OUTCOME_INIT;
	int status = 500;
	struct gather_query q = {.from = from, .to = to, .where_from = "--from", .where_to = "--to"};
	cJSON *input = gather_bundle(&app, &q, &oo, &status);
	if (!input) {
		print_outcome(&oo, "crosswalk billing: cannot read the period");
		rc = status == 400 ? EXIT_USAGE : EXIT_RUNTIME;
		outcome_release(&oo);
		goto out;
	}
	struct arena arena;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	char *out = NULL;
	size_t olen = 0;
	status = plugin_host_export(h, &ctx, "billing", csv ? CW_MEDIA_CSV : CW_MEDIA_JSON, input, NULL, NULL, &out,
				    &olen);
	if (status == 200) {
		fwrite(out, 1, olen, stdout);
		if (olen == 0 || out[olen - 1] != '\n')
			putchar('\n');
	} else {
		print_outcome(&oo, "crosswalk billing: failed");
		rc = EXIT_RUNTIME;
	}
	outcome_release(&oo);
	arena_release(&arena);
out:
	fflush(stdout);
	if (app.store)
		store_close(app.store);
	plugin_host_free(h);
	terminology_free(terms);
	config_release(&cfg);
	return rc;
}

static int cmd_convert(int argc, char **argv)
{
	const char *path = NULL, *file = NULL, *to_s = NULL;
	bool pretty = false;
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			fputs(usage_convert, stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc && !to_s) {
			to_s = argv[++i];
		} else if (strcmp(argv[i], "--pretty") == 0) {
			pretty = true;
		} else if (!file && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
			file = argv[i];
		} else {
			fprintf(stderr, "crosswalk convert: unexpected argument '%s'\n\n%s", argv[i], usage_convert);
			return EXIT_USAGE;
		}
	}
	enum format to = to_s ? format_from_param(to_s) : FORMAT_NONE;
	if (to_s && to == FORMAT_NONE) {
		fprintf(stderr, "crosswalk convert: --to takes json or xml\n\n%s", usage_convert);
		return EXIT_USAGE;
	}
	FILE *in = !file || strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (!in) {
		fprintf(stderr, "crosswalk convert: %s: %s\n", file, strerror(errno));
		return EXIT_USAGE;
	}
	struct config cfg;
	const char *env = getenv("CROSSWALK_CONFIG");
	int rc = 0;
	if (path || (env && *env))
		rc = load_config(&cfg, path, NULL);
	else if (config_defaults(&cfg) != 0)
		rc = EXIT_RUNTIME;
	if (rc != 0) {
		if (in != stdin)
			fclose(in);
		return rc;
	}
	size_t len = 0;
	char *data = read_all(in, (size_t)cfg.limits.max_body_bytes, &len);
	if (in != stdin)
		fclose(in);
	if (!data) {
		fprintf(stderr, "crosswalk convert: cannot read the input (at most %llu bytes)\n",
			(unsigned long long)cfg.limits.max_body_bytes);
		config_release(&cfg);
		return EXIT_RUNTIME;
	}
	enum format from = format_of_body(NULL, data, len);
	if (to == FORMAT_NONE)
		to = from == FORMAT_XML ? FORMAT_JSON : FORMAT_XML;
	struct fjson_limits lim;
	config_json_limits(&cfg, &lim);
	struct outcome oo = OUTCOME_INIT;
	int status = 0;
	size_t olen = 0;
	char *out = from == FORMAT_NONE ? NULL : fhir_io_convert(from, to, data, len, pretty, &lim, &olen, &oo, &status);
	if (from == FORMAT_NONE)
		outcome_add(&oo, OUTCOME_ERROR, "structure", NULL, "the input is neither FHIR JSON nor FHIR XML");
	if (out) {
		fwrite(out, 1, olen, stdout);
		if (to == FORMAT_JSON)
			fputc('\n', stdout);
		rc = fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
	} else {
		cJSON *o = outcome_to_json(&oo);
		char *txt = o ? fjson_print(o, true, NULL) : NULL;
		fprintf(stderr, "%s\n", txt ? txt : "conversion failed");
		free(txt);
		cJSON_Delete(o);
		rc = EXIT_RUNTIME;
	}
	free(out);
	outcome_release(&oo);
	free(data);
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
	if (strcmp(cmd, "plugins") == 0)
		return cmd_plugins(argc - 1, argv + 1);
	if (strcmp(cmd, "convert") == 0)
		return cmd_convert(argc - 1, argv + 1);
	if (strcmp(cmd, "map") == 0)
		return cmd_map(argc - 1, argv + 1);
	if (strcmp(cmd, "billing") == 0)
		return cmd_billing(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	fprintf(stderr, "crosswalk: unknown command '%s'\n\n%s", cmd, usage_main);
	return EXIT_USAGE;
}
