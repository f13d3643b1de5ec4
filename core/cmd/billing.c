/* billing — print the billing extract of a period from the store. */
#include "cmd/cmd.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/gather.h"
#include "base/fjson.h"

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
int cmd_billing(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL, *from = NULL, *to = NULL;
	bool csv = false;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
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
	int rc = cmd_load_config(&cfg, path, plugins_dir);
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
	struct plugin_host *h = cmd_open_plugins(&cfg, &terms);
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
