/* billing — print the billing extract of a period from the store. */
#include "cmd/cmd.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/audit.h"
#include "api/audit_spool.h"
#include "api/egress.h"
#include "api/gather.h"
#include "api/privacy.h"
#include "api/purpose.h"
#include "app.h"
#include "base/fjson.h"

static const char usage_billing[] =
	"usage: crosswalk billing --from DATE --to DATE [--client ID] [--csv] [-c FILE] [--plugins DIR]\n"
	"\n"
	"Prints the billing extract (docs/formats/billing.md) of the Encounters whose\n"
	"period overlaps DATE..DATE (YYYY-MM-DD), read from the store under the\n"
	"configured data_dir: the same Bundle GET /export/billing?from=&to= maps,\n"
	"through the billing plugin, after the before-export hooks, with the same\n"
	"security labels, consent decisions and minimum-necessary view\n"
	"(docs/privacy.md). The recipient is the configured client ID\n"
	"(auth.clients): its organization and purpose decide what its Patients'\n"
	"Consents let through. Without --client nobody is named, and no 42 CFR\n"
	"Part 2 data is disclosed. What is withheld is listed as not billed for\n"
	"no-part2-consent. When Part 2 data is disclosed, the redisclosure notice\n"
	"and the permitting Consents go with it (members of the JSON; on standard\n"
	"error with --csv). Every run is on the access record: an AuditEvent,\n"
	"durable before anything is printed (data_dir/audit-spool/ while a running\n"
	"gateway holds the store; it imports them when it starts). The store is\n"
	"only read; a data_dir without a store is an error. Errors are printed as\n"
	"an OperationOutcome on standard error.\n"
	"\n"
	"options:\n"
	"  --from DATE, --to DATE   the period (both required)\n"
	"  --client ID              the recipient, a client of auth.clients\n"
	"  --csv                    CSV instead of JSON\n"
	"  -c, --config FILE        configuration file (as for serve)\n"
	"  --plugins DIR            also load the plugins in DIR\n"
	"  -h, --help               this help\n"
	"\n"
	"exit codes: 0 printed, 1 the store, the access record or the mapping\n"
	"failed, 2 usage or configuration error\n";

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

/* What consent withheld, for the access record. */
struct withheld_list {
	char **refs;
	size_t n;
	bool oom;
};

static void note_withheld(void *ud, const char *type, const char *id, const char *reason)
{
	(void)reason;
	struct withheld_list *l = ud;
	char ref[STORE_TYPE_SIZE + STORE_ID_SIZE + 2];
	snprintf(ref, sizeof ref, "%.64s/%.64s", type ? type : "", id ? id : "");
	char **nr = realloc(l->refs, (l->n + 1) * sizeof *nr);
	char *copy = strdup(ref);
	if (!nr || !copy) {
		free(copy);
		if (nr)
			l->refs = nr;
		l->oom = true;
		return;
	}
	l->refs = nr;
	l->refs[l->n++] = copy;
}

/* The run's AuditEvents, durable before anything is printed: spooled, then
 * stored at once when this process holds the store (no gateway runs). */
static int record_run(struct app *app, bool writer, const struct audit_disclosure *d)
{
	if (!app->cfg->audit.enabled)
		return 0;
	cJSON *evs[2] = {NULL, NULL};
	size_t n = audit_disclosure_events(d, evs);
	char err[1024] = "out of memory";
	int rc = n ? audit_spool_put(app->cfg->data_dir, d->run_id, evs, n, err, sizeof err) : -1;
	for (size_t i = 0; i < 2; i++)
		cJSON_Delete(evs[i]);
	if (rc != 0) {
		fprintf(stderr, "crosswalk billing: the access record could not be written, nothing is disclosed: %s\n",
			err);
		return EXIT_RUNTIME;
	}
	if (writer && audit_spool_import(app->store, app->cfg->data_dir, err, sizeof err) < 0)
		fprintf(stderr, "crosswalk billing: the access record stays spooled: %s\n", err);
	return 0;
}

/* Opens the store under data_dir: as its writer when no gateway holds it
 * (*writer true), else read-only beside the gateway. */
static int open_store(const struct config *cfg, struct store **st, bool *writer)
{
	char err[1024];
	*writer = store_open_sqlite(cfg->data_dir, 0, 0, st, err, sizeof err) == 0;
	if (*writer)
		return 0;
	if (store_open_sqlite(cfg->data_dir, STORE_OPEN_SHARED, 0, st, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk billing: %s\n", err);
		return EXIT_RUNTIME;
	}
	return 0;
}

/* With --csv the extract has no element for them: the notice and the
 * permitting Consents (with their scope) go to standard error. */
static void notice_to_stderr(const cJSON *input)
{
	const cJSON *x;
	cJSON_ArrayForEach(
		x, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(input, "meta"), "extension"))
	{
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "url"));
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "valueString"));
		const cJSON *ref = cJSON_GetObjectItemCaseSensitive(x, "valueReference");
		const char *r = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "reference"));
		const char *scope = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "display"));
		if (url && v && !strcmp(url, EGRESS_NOTICE_URL))
			fprintf(stderr, "crosswalk billing: notice: %s\n", v);
		else if (url && r && !strcmp(url, EGRESS_CONSENT_URL))
			fprintf(stderr, "crosswalk billing: consent: %s; %s\n", r, scope ? scope : "");
	}
}

/* The billing extract of a period, from the store, for a recipient: the
 * HTTP extract's steps (gather_bundle, privacy_label_derived, the egress
 * over the gathered Bundle, the billing purpose's view, the plugin) with a
 * struct app holding what they read (cfg, store, labels, notice, plugins),
 * without app_init's routes, listener or workers. */
int cmd_billing(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL, *from = NULL, *to = NULL, *client = NULL;
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
		} else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc && !client) {
			client = argv[++i];
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
	int purpose = client ? auth_client_purpose(&cfg, client) : (int)AUTH_BILLING;
	if (purpose < 0) {
		fprintf(stderr, "crosswalk billing: --client %s: no client of auth.clients has that client_id\n",
			client);
		config_release(&cfg);
		return EXIT_USAGE;
	}
	char err[1024], db[4200];
	struct stat st;
	snprintf(db, sizeof db, "%s/store.db", cfg.data_dir);
	if (stat(db, &st) != 0) {
		fprintf(stderr, "crosswalk billing: no store in %s (data_dir)\n", cfg.data_dir);
		config_release(&cfg);
		return EXIT_RUNTIME;
	}
	struct app app;
	memset(&app, 0, sizeof app);
	app.cfg = &cfg;
	app.plugins = cmd_open_plugins(&cfg, &app.terms);
	bool writer = false;
	cJSON *input = NULL;
	struct withheld_list wl = {0};
	if (!app.plugins || plugin_host_refusals(app.plugins)) {
		plugin_host_print_refusals(app.plugins, stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	if (!plugin_host_format(app.plugins, "billing", NULL)) {
		fprintf(stderr, "crosswalk billing: no plugin maps the format 'billing'\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if (app_load_privacy(&app, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk billing: %s\n", err);
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = open_store(&cfg, &app.store, &writer)) != 0)
		goto out;
	char run_id[64], query[128];
	snprintf(run_id, sizeof run_id, "billing-%lld-%ld", (long long)time(NULL), (long)getpid());
	snprintf(query, sizeof query, "from=%.32s&to=%.32s%s%.64s", from, to, client ? "&client=" : "",
		 client ? client : "");
	struct audit_disclosure d = {.subtype = "billing-extract",
				     .run_id = run_id,
				     .client_id = client,
				     .purpose = (enum auth_purpose)purpose,
				     .query = query,
				     .reason = EGRESS_NO_PART2_CONSENT};
	struct outcome oo = OUTCOME_INIT;
	int status = 500;
	struct gather_query q = {.from = from, .to = to, .where_from = "--from", .where_to = "--to"};
	input = gather_bundle(&app, &q, &oo, &status);
	if (input && privacy_label_derived(&app, input) != 0) {
		cJSON_Delete(input);
		input = NULL;
		outcome_add(&oo, OUTCOME_FATAL, "exception", NULL, "out of memory");
		status = 500;
	}
	if (!input) {
		d.status = status;
		if (record_run(&app, writer, &d) == 0)
			print_outcome(&oo, "crosswalk billing: cannot read the period");
		rc = status == 400 ? EXIT_USAGE : EXIT_RUNTIME;
		outcome_release(&oo);
		goto out;
	}
	struct egress eg;
	egress_begin_command(&eg, &app, client);
	eg.on_withheld = note_withheld;
	eg.ud = &wl;
	egress_gathered_with(&app, &eg, input);
	bool part2 = eg.part2 || eg.ncited;
	egress_end(&eg, NULL);
	purpose_filter(AUTH_BILLING, input); /* the extract is for payment: its view */
	struct arena arena;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, app.plugins, &arena, &oo, NULL);
	char *out = NULL;
	size_t olen = 0;
	/* the plugin consumes its input; the access record names what it held */
	cJSON *copy = cJSON_Duplicate(input, true);
	status = copy ? plugin_host_export(app.plugins, &ctx, "billing", csv ? CW_MEDIA_CSV : CW_MEDIA_JSON, copy, NULL,
					   NULL, &out, &olen)
		      : 500;
	d.status = status;
	d.disclosed = status == 200 ? input : NULL;
	d.withheld = (const char *const *)wl.refs;
	d.nwithheld = wl.n;
	if (wl.oom || !copy) {
		fprintf(stderr, "crosswalk billing: out of memory\n");
		rc = EXIT_RUNTIME;
	} else if ((rc = record_run(&app, writer, &d)) != 0) {
		/* nothing leaves without its record */
	} else if (status == 200) {
		if (csv && part2)
			notice_to_stderr(input);
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
	cJSON_Delete(input);
	for (size_t i = 0; i < wl.n; i++)
		free(wl.refs[i]);
	free(wl.refs);
	app_release(&app);
	config_release(&cfg);
	return rc;
}
