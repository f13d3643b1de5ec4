/* Unit tests: the R4 core invariants (FHIRPath constraints) in validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fjson.h"
#include "fhir/invariants.h"
#include "fhir/validate.h"
#include "testenv.h"

static cJSON *json(const char *s)
{
	cJSON *j = fjson_parse(s, strlen(s), NULL, NULL);
	assert_non_null(j);
	return j;
}

static bool has_issue(const struct outcome *oo, const char *key, const char *path)
{
	for (size_t i = 0; i < oo->n; i++)
		if (strstr(oo->issues[i].diagnostics, key) && !strcmp(oo->issues[i].code, "invariant") &&
		    oo->issues[i].expression && !strcmp(oo->issues[i].expression, path))
			return true;
	return false;
}

/* A resource that breaks an invariant is invalid, with the key and element named. */
static void failures_reported(void **state)
{
	(void)state;
	cJSON *p = json("{\"resourceType\":\"Patient\",\"contact\":[{\"gender\":\"male\"}]}");
	struct outcome oo = OUTCOME_INIT;
	assert_int_equal(validate_resource(p, &oo), 1);
	assert_true(has_issue(&oo, "pat-1", "Patient.contact"));
	outcome_release(&oo);
	cJSON_Delete(p);

	p = json("{\"resourceType\":\"Patient\",\"contact\":[{\"gender\":\"male\",\"name\":{\"family\":\"X\"}}]}");
	struct outcome ok = OUTCOME_INIT;
	assert_int_equal(validate_resource(p, &ok), 0);
	outcome_release(&ok);
	cJSON_Delete(p);

	/* obs-6: dataAbsentReason only without a value; obs-7 on the resource */
	cJSON *o = json("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			"\"valueString\":\"a\",\"dataAbsentReason\":{\"text\":\"unknown\"}}");
	struct outcome oo2 = OUTCOME_INIT;
	assert_int_equal(validate_resource(o, &oo2), 1);
	assert_true(has_issue(&oo2, "obs-6", "Observation"));
	outcome_release(&oo2);
	cJSON_Delete(o);

	/* dom-4: a contained resource carries no meta.versionId */
	cJSON *c = json(
		"{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\","
		"\"meta\":{\"versionId\":\"1\"},\"name\":\"O\"}],\"managingOrganization\":{\"reference\":\"#o\"}}");
	struct outcome oo3 = OUTCOME_INIT;
	assert_int_equal(validate_resource(c, &oo3), 1);
	assert_true(has_issue(&oo3, "dom-4", "DomainResource"));
	outcome_release(&oo3);
	cJSON_Delete(c);
}

/* The official examples keep every invariant the engine evaluates. */
static void official_examples(void **state)
{
	(void)state;
	char dir[1024];
	corpus_path(dir, sizeof dir, "fhir-r4/examples-json-xml/json");
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	struct invariants_stats all = {0};
	size_t files = 0;
	while ((e = readdir(d)) != NULL) {
		if (!strstr(e->d_name, ".json"))
			continue;
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		size_t len;
		char *buf = read_whole_file(path, &len);
		cJSON *r = buf ? fjson_parse(buf, len, NULL, NULL) : NULL;
		free(buf);
		if (!r)
			continue;
		files++;
		struct outcome oo = OUTCOME_INIT;
		struct invariants_stats st;
		invariants_check(r, &oo, &st);
		for (size_t i = 0; i < oo.n; i++)
			print_message("%s: %s\n", e->d_name, oo.issues[i].diagnostics);
		all.checked += st.checked;
		all.failed += st.failed;
		all.unchecked += st.unchecked;
		outcome_release(&oo);
		cJSON_Delete(r);
	}
	closedir(d);
	print_message("# %zu examples: %zu invariant evaluations, %zu failed, %zu unchecked\n", files, all.checked,
		      all.failed, all.unchecked);
	assert_true(files > 700);
	assert_true(all.checked > 5000);
	assert_int_equal(all.failed, 0);
	/* the engine evaluates all but a handful (memberOf() and the like) */
	assert_true(all.unchecked <= 5);
}

/* Every generated constraint compiles. */
static void table_compiles(void **state)
{
	(void)state;
	assert_true(invariants_n > 150);
	struct outcome oo = OUTCOME_INIT;
	cJSON *p = json("{\"resourceType\":\"Patient\"}");
	struct invariants_stats st;
	invariants_check(p, &oo, &st);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.unchecked, 0);
	assert_true(st.checked >= 2); /* dom-4 and dom-5 at least */
	outcome_release(&oo);
	cJSON_Delete(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(failures_reported),
		cmocka_unit_test(official_examples),
		cmocka_unit_test(table_compiles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
