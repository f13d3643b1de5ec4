/* make bench section: strict JSON parse+print (fjson) against plain cJSON
 * parse+print on the same files, in one run. Prints MB/s and the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fjson.h"
#include "bench_util.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_json FILE...\n");
		return 2;
	}
	size_t nfiles = (size_t)argc - 1, total = 0;
	char **text = calloc(nfiles, sizeof *text);
	size_t *len = calloc(nfiles, sizeof *len);
	for (size_t i = 0; i < nfiles; i++) {
		text[i] = bench_read_file(argv[i + 1], &len[i]);
		if (!text[i])
			return 1;
		total += len[i];
	}
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = (size_t)1 << 34;
	lim.max_array_items = 10000000;
	lim.max_members = 1000000;
	const int rounds = 5;
	double best_f = 1e9, best_c = 1e9;
	for (int r = 0; r < rounds; r++) {
		double t0 = now();
		for (size_t i = 0; i < nfiles; i++) {
			struct fjson_error err;
			cJSON *j = fjson_parse(text[i], len[i], &lim, &err);
			if (!j) {
				fprintf(stderr, "%s: %s\n", argv[i + 1], err.message);
				return 1;
			}
			size_t n;
			char *out = fjson_print(j, false, &n);
			free(out);
			cJSON_Delete(j);
		}
		double t1 = now();
		for (size_t i = 0; i < nfiles; i++) {
			cJSON *j = cJSON_ParseWithLength(text[i], len[i]);
			char *out = cJSON_PrintUnformatted(j);
			free(out);
			cJSON_Delete(j);
		}
		double t2 = now();
		if (t1 - t0 < best_f)
			best_f = t1 - t0;
		if (t2 - t1 < best_c)
			best_c = t2 - t1;
	}
	double mb = (double)total / 1e6;
	printf("files: %zu, %.1f MB, best of %d rounds\n", nfiles, mb, rounds);
	printf("strict JSON (fjson) parse+print:  %8.1f MB/s\n", mb / best_f);
	printf("plain cJSON parse+print:          %8.1f MB/s\n", mb / best_c);
	printf("ratio fjson/cJSON:                %8.2f   (target >= 0.50)\n", best_c / best_f);
	for (size_t i = 0; i < nfiles; i++)
		free(text[i]);
	free(text);
	free(len);
	return 0;
}
