/* make bench section: FHIR JSON → XML and XML → JSON conversion on the same
 * files, in MB/s (of the input) and resources/s. Writes the XML inputs it
 * makes (FILE.xml in the output directory) for the other implementations to
 * read. Usage: bench_convert OUTDIR FILE.json... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fhir/fhir_xml.h"
#include "base/fjson.h"
#include "bench_util.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resources in a tree: the root plus every object with a resourceType below. */
static size_t count_resources(const cJSON *j)
{
	size_t n = 0;
	if (cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "resourceType"))
		n++;
	for (const cJSON *c = j ? j->child : NULL; c; c = c->next)
		if (cJSON_IsObject(c) || cJSON_IsArray(c))
			n += count_resources(c);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_convert OUTDIR FILE.json...\n");
		return 2;
	}
	size_t nfiles = (size_t)argc - 2, jtotal = 0, xtotal = 0, resources = 0;
	char **json = calloc(nfiles, sizeof *json), **xml = calloc(nfiles, sizeof *xml);
	size_t *jlen = calloc(nfiles, sizeof *jlen), *xlen = calloc(nfiles, sizeof *xlen);
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = (size_t)1 << 34;
	lim.max_array_items = 10000000;
	lim.max_members = 1000000;
	for (size_t i = 0; i < nfiles; i++) {
		json[i] = bench_read_file(argv[i + 2], &jlen[i]);
		if (!json[i])
			return 1;
		jtotal += jlen[i];
		cJSON *j = fjson_parse(json[i], jlen[i], &lim, NULL);
		struct outcome oo = OUTCOME_INIT;
		int st;
		xml[i] = j ? fhir_json_to_xml(j, false, &xlen[i], &oo, &st) : NULL;
		if (!xml[i]) {
			fprintf(stderr, "%s: not convertible\n", argv[i + 2]);
			return 1;
		}
		resources += count_resources(j);
		xtotal += xlen[i];
		cJSON_Delete(j);
		const char *base = strrchr(argv[i + 2], '/');
		char out[4096];
		snprintf(out, sizeof out, "%s/%s.xml", argv[1], base ? base + 1 : argv[i + 2]);
		FILE *f = fopen(out, "wb");
		if (!f || fwrite(xml[i], 1, xlen[i], f) != xlen[i])
			return 1;
		fclose(f);
	}
	const int rounds = 3;
	double best_jx = 1e9, best_xj = 1e9;
	for (int r = 0; r < rounds; r++) {
		double t0 = now();
		for (size_t i = 0; i < nfiles; i++) {
			struct outcome oo = OUTCOME_INIT;
			int st;
			cJSON *j = fjson_parse(json[i], jlen[i], &lim, NULL);
			size_t n;
			char *x = fhir_json_to_xml(j, false, &n, &oo, &st);
			if (!x)
				return 1;
			free(x);
			cJSON_Delete(j);
		}
		double t1 = now();
		for (size_t i = 0; i < nfiles; i++) {
			struct outcome oo = OUTCOME_INIT;
			int st;
			size_t n;
			char *s = fhir_xml_to_json_text(xml[i], xlen[i], &lim, &n, &oo, &st);
			if (!s)
				return 1;
			free(s);
		}
		double t2 = now();
		if (t1 - t0 < best_jx)
			best_jx = t1 - t0;
		if (t2 - t1 < best_xj)
			best_xj = t2 - t1;
	}
	/* machine-readable line for the section script */
	printf("crosswalk json_to_xml %.1f MB/s %.0f res/s; xml_to_json %.1f MB/s %.0f res/s (%zu files, %zu resources, "
	       "%.1f MB JSON, %.1f MB XML)\n",
	       (double)jtotal / best_jx / 1e6, (double)resources / best_jx, (double)xtotal / best_xj / 1e6,
	       (double)resources / best_xj, nfiles, resources, (double)jtotal / 1e6, (double)xtotal / 1e6);
	printf("RESULT %.3f %.3f %.0f %.0f\n", (double)jtotal / best_jx / 1e6, (double)xtotal / best_xj / 1e6,
	       (double)resources / best_jx, (double)resources / best_xj);
	return 0;
}
