/* convert — convert a FHIR resource between JSON and XML. */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir_io.h"

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

int cmd_convert(int argc, char **argv)
{
	const char *path = NULL, *file = NULL, *to_s = NULL;
	bool pretty = false;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
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
		rc = cmd_load_config(&cfg, path, NULL);
	else if (config_defaults(&cfg) != 0)
		rc = EXIT_RUNTIME;
	if (rc != 0) {
		if (in != stdin)
			fclose(in);
		return rc;
	}
	size_t len = 0;
	char *data = cmd_read_all(in, (size_t)cfg.limits.max_body_bytes, &len);
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
