/* make bench helper: FHIRPath evaluations per second. Reads the expression
 * list (tools/bench/fhirpath-exprs.txt) and FHIR JSON Bundles, takes every
 * entry's resource, and evaluates each expression on each resource of its
 * type, compiled once (the cache) and evaluated in an arena reset between
 * evaluations (arena_reset).
 * Prints "RESULT evaluations_per_s evaluations". Usage: bench_fhirpath EXPRS FILE.json… */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fjson.h"
#include "bench_util.h"
#include "fhir/fhirpath.h"

struct expr {
	char type[64];
	const struct fp_expr *e;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	size_t len;
	char *list = bench_read_file(argv[1], &len);
	if (!list)
		return 1;
	struct expr exprs[128];
	size_t ne = 0;
	for (char *line = strtok(list, "\n"); line && ne < 128; line = strtok(NULL, "\n")) {
		if (line[0] == '#' || !strchr(line, '\t'))
			continue;
		char *tab = strchr(line, '\t');
		*tab = '\0';
		snprintf(exprs[ne].type, sizeof exprs[ne].type, "%s", line);
		struct fp_error err;
		exprs[ne].e = fp_cached(tab + 1, &err);
		if (!exprs[ne].e) {
			fprintf(stderr, "%s: %s\n", tab + 1, err.message);
			return 1;
		}
		ne++;
	}
	cJSON *docs[64];
	size_t nd = 0;
	for (int i = 2; i < argc && nd < 64; i++) {
		char *b = bench_read_file(argv[i], &len);
		if (b && (docs[nd] = fjson_parse(b, len, NULL, NULL)) != NULL)
			nd++;
		free(b);
	}
	struct arena a;
	arena_init(&a, 64u << 20);
	double best = 0;
	long evals = 0, errors = 0;
	for (int round = 0; round < 20; round++) {
		evals = 0;
		errors = 0;
		double t0 = now();
		for (size_t d = 0; d < nd; d++) {
			const cJSON *entries = cJSON_GetObjectItem(docs[d], "entry");
			for (const cJSON *en = entries ? entries->child : NULL; en; en = en->next) {
				const cJSON *res = cJSON_GetObjectItem(en, "resource");
				const cJSON *rt = cJSON_GetObjectItem(res, "resourceType");
				if (!cJSON_IsString(rt))
					continue;
				for (size_t k = 0; k < ne; k++) {
					if (strcmp(exprs[k].type, "*") && strcmp(exprs[k].type, rt->valuestring))
						continue;
					struct fp_env env = {.resource = res, .root = docs[d]};
					struct fp_coll r;
					struct fp_error err;
					if (fp_eval(exprs[k].e, &env, &a, &r, &err) != 0)
						errors++;
					evals++;
					arena_reset(&a);
				}
			}
		}
		double t = now() - t0;
		if (evals / t > best)
			best = evals / t;
	}
	printf("crosswalk fhirpath %.0f evaluations/s (%ld evaluations of %zu expressions on %zu bundles, %ld "
	       "errors)\n",
	       best, evals, ne, nd, errors);
	printf("RESULT %f %ld\n", best, evals);
	arena_release(&a);
	for (size_t d = 0; d < nd; d++)
		cJSON_Delete(docs[d]);
	free(list);
	return 0;
}
