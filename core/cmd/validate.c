/* validate — structural and profile validation of FHIR files in bulk. */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "base/fjson.h"
#include "fhir/fhir_io.h"
#include "fhir/profile.h"
#include "fhir/validate.h"

static const char usage_validate[] =
	"usage: crosswalk validate [--profile URL] [--format table|json] [-c FILE] FILE...\n"
	"\n"
	"Validates each FILE (one FHIR R4 resource in JSON or XML, detected from its\n"
	"first byte) as POST /fhir/$validate does: structurally, then against the\n"
	"profile --profile names or else the profiles the resource claims in\n"
	"meta.profile. The profiles are those the gateway loads (profiles_dir and\n"
	"validation.packages_dir of the configuration: -c, CROSSWALK_CONFIG, else\n"
	"the built-in defaults). Prints a table of the files with their error and\n"
	"warning counts and every error and warning, or with --format json one JSON\n"
	"object: {\"files\":[{\"file\",\"errors\",\"warnings\",\"outcome\"}],\"errors\"}.\n"
	"\n"
	"exit codes: 0 no file has an error, 1 some file has an error (or cannot be\n"
	"read), 2 usage error (also an unknown --profile)\n";

static size_t count_severity(const struct outcome *oo, enum outcome_severity sev)
{
	size_t n = 0;
	for (size_t i = 0; i < oo->n; i++)
		n += oo->issues[i].severity == sev;
	return n;
}

/* Validates the file at path into oo (a file that cannot be read or parsed is
 * an error issue there). */
static void validate_file(const char *path, const struct config *cfg, const struct profile_set *ps, const char *profile,
			  struct outcome *oo)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		outcome_add(oo, OUTCOME_ERROR, "not-found", NULL, "cannot open the file: %s", strerror(errno));
		return;
	}
	struct cmd_input in;
	cmd_input_read(f, (size_t)cfg->limits.max_file_bytes, &in);
	fclose(f);
	if (!in.data) {
		outcome_add(oo, OUTCOME_ERROR, "too-costly", NULL,
			    "larger than limits.max_file_bytes, or memory ran out");
		return;
	}
	struct fjson_limits lim;
	cmd_file_limits(cfg, in.len, &lim);
	enum format from = format_of_body(NULL, in.data, in.len);
	int status = 0;
	cJSON *r = from == FORMAT_NONE ? NULL : fhir_io_read(from, in.data, in.len, &lim, oo, &status);
	if (from == FORMAT_NONE)
		outcome_add(oo, OUTCOME_ERROR, "structure", NULL, "the file is neither FHIR JSON nor FHIR XML");
	cmd_input_release(&in);
	if (!r) {
		if (!outcome_errors(oo))
			outcome_add(oo, OUTCOME_ERROR, "structure", NULL, "the file is not a FHIR resource");
		return;
	}
	if (validate_resource(r, oo) == 0 || profile)
		profile_validate(ps, r, profile, oo, NULL);
	cJSON_Delete(r);
}

static const char *severity_name(enum outcome_severity s)
{
	static const char *const names[] = {"fatal", "error", "warning", "information"};
	return names[s];
}

int cmd_validate(int argc, char **argv)
{
	const char *profile = NULL, *path = NULL;
	bool json = false;
	int first = argc;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
			fputs(usage_validate, stdout);
			return 0;
		} else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
			profile = argv[++i];
		} else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc &&
			   (!strcmp(argv[i + 1], "json") || !strcmp(argv[i + 1], "table"))) {
			json = strcmp(argv[++i], "json") == 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "crosswalk validate: unknown option '%s'\n\n%s", argv[i], usage_validate);
			return EXIT_USAGE;
		} else {
			first = i;
			break;
		}
	}
	if (first >= argc) {
		fputs(usage_validate, stderr);
		return EXIT_USAGE;
	}
	struct config cfg;
	int rc = cmd_config_for(path, &cfg);
	if (rc != 0)
		return rc;
	char err[512] = "";
	struct terminology *terms = app_load_terminology(&cfg, err, sizeof err);
	struct profile_set *ps = terms ? app_load_profiles(&cfg, terms, err, sizeof err) : NULL;
	if (!ps) {
		fprintf(stderr, "crosswalk validate: loading the profiles: %s\n", err);
		terminology_free(terms);
		config_release(&cfg);
		return EXIT_USAGE;
	}
	if (profile && !profile_known(ps, profile)) {
		fprintf(stderr, "crosswalk validate: the profile '%s' is not loaded\n", profile);
		rc = EXIT_USAGE;
		goto out;
	}
	cJSON *report = json ? cJSON_CreateObject() : NULL;
	cJSON *files = report ? cJSON_AddArrayToObject(report, "files") : NULL;
	if (json && !files) {
		rc = EXIT_RUNTIME;
		cJSON_Delete(report);
		goto out;
	}
	size_t failed = 0;
	if (!json)
		printf("%-50s %6s %8s\n", "FILE", "ERRORS", "WARNINGS");
	for (int i = first; i < argc; i++) {
		struct outcome oo = OUTCOME_INIT;
		validate_file(argv[i], &cfg, ps, profile, &oo);
		size_t errors = outcome_errors(&oo), warnings = count_severity(&oo, OUTCOME_WARNING);
		failed += errors > 0;
		if (json) {
			cJSON *f = cJSON_CreateObject();
			cJSON_AddItemToArray(files, f);
			cJSON_AddStringToObject(f, "file", argv[i]);
			cJSON_AddNumberToObject(f, "errors", (double)errors);
			cJSON_AddNumberToObject(f, "warnings", (double)warnings);
			cJSON_AddItemToObject(f, "outcome", outcome_to_json(&oo));
		} else {
			printf("%-50s %6zu %8zu\n", argv[i], errors, warnings);
			for (size_t k = 0; k < oo.n; k++) {
				const struct outcome_issue *is = &oo.issues[k];
				if (is->severity > OUTCOME_WARNING)
					continue;
				printf("  %s %s%s%s: %s\n", severity_name(is->severity),
				       is->message_id ? is->message_id : is->code, is->expression ? " at " : "",
				       is->expression ? is->expression : "", is->diagnostics ? is->diagnostics : "");
			}
		}
		outcome_release(&oo);
	}
	if (json) {
		cJSON_AddNumberToObject(report, "errors", (double)failed);
		char *txt = fjson_print(report, true, NULL);
		if (txt)
			puts(txt);
		else
			rc = EXIT_RUNTIME;
		free(txt);
		cJSON_Delete(report);
	} else {
		printf("%d files, %zu with errors\n", argc - first, failed);
	}
	if (failed && !rc)
		rc = EXIT_RUNTIME;
	if (fflush(stdout) != 0)
		rc = EXIT_RUNTIME;
out:
	profile_set_free(ps);
	terminology_free(terms);
	config_release(&cfg);
	return rc;
}
