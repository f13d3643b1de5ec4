/* make bench helper: validation against a profile, resources per second.
 * Loads profiles/ and the core profiles of tests/fixtures/packages, takes
 * from the Synthea Bundles every body weight Observation (LOINC 29463-7) and
 * makes 500 recovery-strength Observations, writes both sets to OUTDIR
 * (bodyweight.json, strength.json) and the generated snapshot of
 * recovery-strength (strength-snapshot.json) so that the other side of the
 * comparison validates the very same resources, then validates each set:
 * structural validation with the core invariants, then the profile
 * (bodyweight; recovery-strength), best of five rounds. The files after
 * "--" (the official examples) are validated without a profile (structural
 * validation with the core invariants, what runs before any profile) and
 * written to OUTDIR/examples.json for the other side.
 * Prints "RESULT core_res_per_s project_res_per_s core_n project_n
 * examples_res_per_s examples_n".
 * Usage: bench_profile OUTDIR FILE.json… [-- EXAMPLE.json…] */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fjson.h"
#include "bench_util.h"
#include "fhir/profile.h"
#include "fhir/terminology.h"
#include "fhir/validate.h"

#define BW "http://hl7.org/fhir/StructureDefinition/bodyweight"
#define STRENGTH "https://crosswalk.example.org/fhir/StructureDefinition/recovery-strength"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_json(const char *dir, const char *name, const cJSON *j)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	char *s = cJSON_PrintUnformatted(j);
	FILE *f = fopen(path, "w");
	if (!s || !f || fputs(s, f) < 0) {
		fprintf(stderr, "bench_profile: cannot write %s\n", path);
		exit(1);
	}
	fclose(f);
	free(s);
}

/* Validations per second of every resource of set against url; errors
 * counted into *errors (the last round's). */
static double rate(const struct profile_set *ps, const cJSON *set, const char *url, size_t *errors)
{
	double best = 0;
	for (int round = 0; round < 5; round++) {
		size_t n = 0, err = 0;
		double t0 = now(), t;
		do {
			const cJSON *r;
			cJSON_ArrayForEach(r, set)
			{
				struct outcome oo = OUTCOME_INIT;
				validate_resource(r, &oo);
				if (url)
					profile_validate(ps, r, url, &oo, NULL);
				err += outcome_errors(&oo) ? 1 : 0;
				outcome_release(&oo);
				n++;
			}
			t = now() - t0;
		} while (t < 0.5);
		if (n / t > best)
			best = n / t;
		*errors = err * (size_t)cJSON_GetArraySize(set) / (n ? n : 1);
	}
	return best;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_profile OUTDIR FILE.json…\n");
		return 2;
	}
	char err[1024];
	struct terminology *terms = terminology_new();
	if (!terms || terminology_load_dir(terms, "profiles", err, sizeof err) < 0)
		return fprintf(stderr, "bench_profile: %s\n", err), 1;
	terminology_seal(terms);
	struct profile_set *ps = profile_set_new(terms);
	if (!ps || profile_load_dir(ps, "profiles", err, sizeof err) < 0 ||
	    profile_load_packages(ps, "tests/fixtures/packages", err, sizeof err) < 0 ||
	    profile_seal(ps, err, sizeof err) != 0)
		return fprintf(stderr, "bench_profile: %s\n", err), 1;
	cJSON *bw = cJSON_CreateArray(), *st = cJSON_CreateArray(), *ex = cJSON_CreateArray();
	int sep = argc;
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			sep = i;
			break;
		}
	for (int i = sep + 1; i < argc; i++) {
		size_t len;
		char *text = bench_read_file(argv[i], &len);
		cJSON *doc = text ? fjson_parse(text, len, NULL, NULL) : NULL;
		free(text);
		if (doc)
			cJSON_AddItemToArray(ex, doc);
	}
	for (int i = 2; i < sep; i++) {
		size_t len;
		char *text = bench_read_file(argv[i], &len);
		cJSON *doc = text ? fjson_parse(text, len, NULL, NULL) : NULL;
		free(text);
		const cJSON *e;
		cJSON_ArrayForEach(e, cJSON_GetObjectItem(doc, "entry"))
		{
			const cJSON *r = cJSON_GetObjectItem(e, "resource");
			const cJSON *rt = cJSON_GetObjectItem(r, "resourceType");
			if (!cJSON_IsString(rt) || strcmp(rt->valuestring, "Observation") != 0)
				continue;
			const cJSON *c;
			cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(r, "code"), "coding"))
			{
				const cJSON *code = cJSON_GetObjectItem(c, "code");
				if (cJSON_IsString(code) && !strcmp(code->valuestring, "29463-7")) {
					cJSON_AddItemToArray(bw, cJSON_Duplicate(r, 1));
					break;
				}
			}
		}
		cJSON_Delete(doc);
	}
	for (int i = 0; i < 500; i++) {
		char text[1024];
		snprintf(
			text, sizeof text,
			"{\"resourceType\":\"Observation\",\"id\":\"s%d\",\"status\":\"final\",\"category\":[{"
			"\"coding\":"
			"[{\"system\":\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":"
			"\"social-history\"}]}],\"code\":{\"coding\":[{\"system\":\"https://crosswalk.example.org/fhir/"
			"CodeSystem/recovery-observation\",\"code\":\"strength\"}]},\"subject\":{\"reference\":"
			"\"Patient/p%d\"},\"effectiveDateTime\":\"2026-11-%02d\",\"valueString\":\"Strength %d in the "
			"person's own words\"}",
			i, i % 37, 1 + i % 28, i);
		cJSON_AddItemToArray(st, fjson_parse(text, strlen(text), NULL, NULL));
	}
	write_json(argv[1], "bodyweight.json", bw);
	write_json(argv[1], "strength.json", st);
	cJSON *snap = profile_snapshot_json(ps, STRENGTH);
	write_json(argv[1], "strength-snapshot.json", snap);
	cJSON_Delete(snap);
	size_t e1 = 0, e2 = 0;
	double r1 = rate(ps, bw, BW, &e1), r2 = rate(ps, st, STRENGTH, &e2);
	printf("crosswalk  bodyweight %7.0f res/s (%d resources, %zu with errors); recovery-strength %7.0f res/s (%d "
	       "resources, %zu with errors)\n",
	       r1, cJSON_GetArraySize(bw), e1, r2, cJSON_GetArraySize(st), e2);
	double r0 = 0;
	size_t e0 = 0;
	if (cJSON_GetArraySize(ex)) {
		write_json(argv[1], "examples.json", ex);
		r0 = rate(ps, ex, NULL, &e0);
		printf("crosswalk  official examples without a profile %7.0f res/s (%d resources, %zu with errors)\n",
		       r0, cJSON_GetArraySize(ex), e0);
	}
	printf("RESULT %f %f %d %d %f %d\n", r1, r2, cJSON_GetArraySize(bw), cJSON_GetArraySize(st), r0,
	       cJSON_GetArraySize(ex));
	cJSON_Delete(ex);
	cJSON_Delete(bw);
	cJSON_Delete(st);
	profile_set_free(ps);
	terminology_free(terms);
	return 0;
}
