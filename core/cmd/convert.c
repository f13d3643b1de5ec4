/* convert — convert a FHIR resource between JSON and XML. */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/heap.h"
#include "fhir/fhir_io.h"

static const char usage_convert[] =
	"usage: crosswalk convert [--to json|xml] [--pretty] [--ndjson] [-c FILE] [FILE|-]\n"
	"\n"
	"Reads one FHIR R4 resource in JSON or XML (detected from its first byte)\n"
	"from FILE or standard input and writes it in the other format (or the one\n"
	"--to names) to standard output. Decimals keep their exact literal; the\n"
	"narrative is carried verbatim. A local document may be as large as\n"
	"limits.max_file_bytes (default 2 GiB; the HTTP body limit does not apply)\n"
	"and is read with the configuration's JSON limits raised to its size\n"
	"(-c or CROSSWALK_CONFIG, else the built-in defaults). Problems are printed\n"
	"as an OperationOutcome on standard error.\n"
	"\n"
	"options:\n"
	"  --to json|xml   output format (default: the other one)\n"
	"  --pretty        indent the output (not with --ndjson)\n"
	"  --ndjson        one resource per line in (JSON or XML, each line by itself),\n"
	"                  one per line out, read and written as a stream; a line that\n"
	"                  fails is reported with its number and left out\n"
	"  -c FILE         configuration file\n"
	"\n"
	"On a terminal a progress line (resources done, rate) is shown on standard\n"
	"error; in a pipe it stays silent.\n"
	"\n"
	"exit codes: 0 converted, 1 the input (or a line of it) is not valid FHIR,\n"
	"2 usage error\n";

static void print_outcome(struct outcome *oo, const char *prefix)
{
	cJSON *o = outcome_to_json(oo);
	char *txt = o ? fjson_print(o, prefix == NULL, NULL) : NULL;
	fprintf(stderr, "%s%s\n", prefix ? prefix : "", txt ? txt : "conversion failed");
	free(txt);
	cJSON_Delete(o);
}

/* One resource per line: each line read, converted and written by itself,
 * so memory stays that of the longest line. XML out is kept on one line:
 * without the XML declaration, a line break in text becomes the character
 * reference &#10;. */
static int convert_ndjson(FILE *in, enum format to, const struct config *cfg)
{
	char *line = NULL;
	size_t cap = 0, n = 0, failed = 0, lineno = 0;
	ssize_t got;
	struct cmd_progress prog;
	cmd_progress_start(&prog, "resources");
	int rc = 0;
	while ((got = getline(&line, &cap, in)) != -1) {
		lineno++;
		size_t len = (size_t)got;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if ((uint64_t)len > cfg->limits.max_file_bytes) {
			fprintf(stderr, "crosswalk convert: line %zu: longer than limits.max_file_bytes\n", lineno);
			failed++;
			continue;
		}
		struct fjson_limits lim;
		cmd_file_limits(cfg, len, &lim);
		enum format from = format_of_body(NULL, line, len);
		struct outcome oo = OUTCOME_INIT;
		int status = 0;
		size_t olen = 0;
		char *out = from == FORMAT_NONE
				    ? NULL
				    : fhir_io_convert(
					      from,
					      to == FORMAT_NONE ? (from == FORMAT_XML ? FORMAT_JSON : FORMAT_XML) : to,
					      line, len, false, &lim, &olen, &oo, &status);
		if (from == FORMAT_NONE)
			outcome_add(&oo, OUTCOME_ERROR, "structure", NULL,
				    "the line is neither FHIR JSON nor FHIR XML");
		if (!out) {
			char where[64];
			snprintf(where, sizeof where, "crosswalk convert: line %zu: ", lineno);
			print_outcome(&oo, where);
			failed++;
		} else {
			size_t i = 0;
			if (olen > 5 && !memcmp(out, "<?xml", 5)) { /* the declaration (UTF-8 is the default) */
				const char *end = memchr(out, '>', olen);
				i = end ? (size_t)(end - out) + 1 : 0;
				while (i < olen && (out[i] == '\n' || out[i] == '\r'))
					i++;
			}
			for (; i < olen; i++) {
				if (out[i] == '\n')
					fputs("&#10;", stdout);
				else
					putchar(out[i]);
			}
			putchar('\n');
			n++;
			cmd_progress_tick(&prog, n);
		}
		free(out);
		outcome_release(&oo);
	}
	free(line);
	cmd_progress_end(&prog, n);
	if (ferror(in)) {
		fprintf(stderr, "crosswalk convert: reading the input failed\n");
		rc = EXIT_RUNTIME;
	}
	if (fflush(stdout) != 0)
		rc = EXIT_RUNTIME;
	if (failed) {
		fprintf(stderr, "crosswalk convert: %zu of %zu lines could not be converted\n", failed, failed + n);
		rc = EXIT_RUNTIME;
	}
	return rc;
}

int cmd_convert(int argc, char **argv)
{
	const char *path = NULL, *file = NULL, *to_s = NULL;
	bool pretty = false, ndjson = false;
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
		} else if (strcmp(argv[i], "--ndjson") == 0) {
			ndjson = true;
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
	int rc = cmd_config_for(path, &cfg);
	if (rc != 0) {
		if (in != stdin)
			fclose(in);
		return rc;
	}
	if (ndjson) {
		rc = convert_ndjson(in, to, &cfg);
		if (in != stdin)
			fclose(in);
		config_release(&cfg);
		return rc;
	}
	struct cmd_input input;
	cmd_input_read(in, (size_t)cfg.limits.max_file_bytes, &input);
	if (in != stdin)
		fclose(in);
	const char *data = input.data;
	size_t len = input.len;
	if (!data) {
		fprintf(stderr,
			"crosswalk convert: cannot read the input: it is larger than limits.max_file_bytes (%llu "
			"bytes), "
			"or memory ran out\n",
			(unsigned long long)cfg.limits.max_file_bytes);
		config_release(&cfg);
		return EXIT_RUNTIME;
	}
	/* the document's tree (about 8 bytes for each byte read) is built in
	 * memory made ready at once, not page by page */
	heap_prepare(len > SIZE_MAX / 8 ? SIZE_MAX : len * 8);
	enum format from = format_of_body(NULL, data, len);
	if (to == FORMAT_NONE)
		to = from == FORMAT_XML ? FORMAT_JSON : FORMAT_XML;
	struct fjson_limits lim;
	cmd_file_limits(&cfg, len, &lim);
	struct outcome oo = OUTCOME_INIT;
	int status = 0;
	size_t olen = 0;
	char *out = from == FORMAT_NONE ? NULL : fhir_io_convert(from, to, data, len, pretty, &lim, &olen, &oo, &status);
	if (from == FORMAT_NONE)
		outcome_add(&oo, OUTCOME_ERROR, "structure", NULL, "the input is neither FHIR JSON nor FHIR XML");
	if (out) {
		/* standard output's buffer is given, not allocated: allocated
		 * now, after the document's tree was freed, it would make the
		 * allocator sort through every freed node first */
		static char outbuf[1 << 16];
		setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
		fwrite(out, 1, olen, stdout);
		if (to == FORMAT_JSON)
			fputc('\n', stdout);
		rc = fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
	} else {
		print_outcome(&oo, NULL);
		rc = EXIT_RUNTIME;
	}
	free(out);
	outcome_release(&oo);
	cmd_input_release(&input);
	config_release(&cfg);
	return rc;
}
