/* map — map one document through a plugin, from or to FHIR. */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "base/fjson.h"
#include "fhir/profile.h"
#include "fhir/validate.h"

static const char usage_map[] = "usage: crosswalk map --from FORMAT [FILE|-] [options]\n"
				"       crosswalk map --to FORMAT [FILE|-] [options]\n"
				"\n"
				"--from maps a native document (FILE, or standard input) to FHIR through the\n"
				"plugin that owns FORMAT, runs the before-store hooks, checks each resource\n"
				"against the R4 model and the profiles it claims (validation.ingest) and\n"
				"prints the transaction Bundle. --to maps a FHIR resource or Bundle to FORMAT, after\n"
				"the before-export hooks. Errors, and the warnings of a success (what the\n"
				"mapping left out), are printed as an OperationOutcome on standard error.\n"
				"\n"
				"options:\n"
				"  -c, --config FILE   configuration file (as for serve)\n"
				"  --plugins DIR       also load the plugins in DIR\n"
				"  --media json|csv    the native media type (default: --from reads the file's\n"
				"                      extension, .json or .csv, else its first character:\n"
				"                      '{' or '[' is JSON, anything else CSV; --to writes the\n"
				"                      format's first media type)\n"
				"  -h, --help          this help\n"
				"\n"
				"exit codes: 0 mapped, 1 the mapping failed, 2 usage or configuration error\n";

int cmd_map(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL, *from = NULL, *to = NULL, *file = NULL, *media_s = NULL;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
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
	int rc = cmd_load_config(&cfg, path, plugins_dir);
	if (rc != 0) {
		if (in != stdin)
			fclose(in);
		return rc;
	}
	size_t len = 0;
	char *data = cmd_read_all(in, (size_t)cfg.limits.max_file_bytes, &len);
	if (in != stdin)
		fclose(in);
	struct terminology *terms = NULL;
	struct profile_set *ps = NULL;
	struct plugin_host *h = data ? cmd_open_plugins(&cfg, &terms) : NULL;
	if (!data)
		fprintf(stderr,
			"crosswalk map: cannot read the input: it is larger than limits.max_file_bytes (%llu bytes), "
			"or "
			"memory ran out\n",
			(unsigned long long)cfg.limits.max_file_bytes);
	if (!h || plugin_host_refusals(h)) {
		plugin_host_print_refusals(h, stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	/* what a mapper makes is held to its claimed profiles, as on /ingest */
	char perr[512] = "";
	ps = from ? app_load_profiles(&cfg, terms, perr, sizeof perr) : NULL;
	if (from && !ps) {
		fprintf(stderr, "crosswalk map: loading the profiles: %s\n", perr);
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
	/* --from reads what the file is (--media, else its extension, else its
	 * content); --to writes the format's first media unless --media says. */
	enum cw_media media = media_s ? (strcmp(media_s, "csv") == 0 ? CW_MEDIA_CSV : CW_MEDIA_JSON)
			      : from  ? plugin_host_guess_media(file && strcmp(file, "-") ? file : NULL, data, len)
			      : (f->media & CW_MEDIA_JSON ? CW_MEDIA_JSON : CW_MEDIA_CSV);
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	int status;
	if (from) {
		ctx.check = validate_ok; /* the mapper's resources are valid FHIR, or refused */
		plugin_host_ctx_profiles(&ctx, ps, cfg.validation.ingest);
		cJSON *bundle = NULL;
		status = plugin_host_ingest(h, &ctx, fname, media, data, len, NULL, NULL, &bundle);
		size_t tlen = 0;
		char *text = status == 200 ? fjson_print(bundle, true, &tlen) : NULL;
		if (text)
			printf("%.*s\n", (int)tlen, text);
		free(text);
		cJSON_Delete(bundle);
	} else {
		/* a local file: the limits of the command line (as for convert),
		 * not the JSON reader's defaults */
		struct fjson_limits lim;
		cmd_file_limits(&cfg, len, &lim);
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
	if (status != 200 || oo.n) {
		/* a success prints its warnings (what was left out) the same way */
		cJSON *oj = outcome_to_json(&oo);
		size_t tlen = 0;
		char *text = oj ? fjson_print(oj, true, &tlen) : NULL;
		if (text)
			fprintf(stderr, "%.*s\n", (int)tlen, text);
		else
			fputs("crosswalk map: failed\n", stderr);
		free(text);
		cJSON_Delete(oj);
		if (status != 200)
			rc = EXIT_RUNTIME;
	}
	outcome_release(&oo);
	arena_release(&arena);
out:
	fflush(stdout);
	plugin_host_free(h);
	profile_set_free(ps);
	terminology_free(terms);
	free(data);
	config_release(&cfg);
	return rc;
}
