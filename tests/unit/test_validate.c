/* Unit tests: structural validation from the model. */
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
#include "fhir/validate.h"
#include "testenv.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct stat st;
	char *buf = NULL;
	if (fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1)))
		*len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	if (buf)
		buf[*len] = '\0';
	return buf;
}

/* Validates text; returns the error count and leaves the first issue in *first. */
static size_t check(const char *json, char *first, size_t fl)
{
	cJSON *j = fjson_parse(json, strlen(json), NULL, NULL);
	assert_non_null(j);
	struct outcome oo = OUTCOME_INIT;
	size_t n = validate_resource(j, &oo);
	if (first && fl)
		snprintf(first, fl, "%s @ %s", oo.n ? oo.issues[0].diagnostics : "",
			 oo.n && oo.issues[0].expression ? oo.issues[0].expression : "");
	outcome_release(&oo);
	cJSON_Delete(j);
	return n;
}

static void expect_error(const char *json, const char *where)
{
	char first[512];
	size_t n = check(json, first, sizeof first);
	if (n == 0 || !strstr(first, where))
		print_message("# %s -> %zu: %s\n", json, n, first);
	assert_true(n > 0);
	assert_non_null(strstr(first, where));
}

static void structural_errors_with_locations(void **state)
{
	(void)state;
	expect_error("{\"id\":\"x\"}", "resourceType");
	expect_error("{\"resourceType\":\"Nope\"}", "not a FHIR R4 resource");
	expect_error("{\"resourceType\":\"Patient\",\"foo\":1}", "@ Patient.foo");
	expect_error("{\"resourceType\":\"Patient\",\"birthDate\":\"1990-13-01\"}", "@ Patient.birthDate");
	expect_error("{\"resourceType\":\"Patient\",\"birthDate\":\"\"}", "Patient.birthDate");
	expect_error("{\"resourceType\":\"Patient\",\"id\":\"a_b\"}", "@ Patient.id");
	expect_error("{\"resourceType\":\"Patient\",\"active\":\"true\"}", "@ Patient.active");
	expect_error("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",\"\"]}]}", "@ Patient.name[0].given[1]");
	expect_error("{\"resourceType\":\"Patient\",\"name\":[]}", "empty");
	expect_error("{\"resourceType\":\"Patient\",\"name\":[{}]}", "@ Patient.name[0]");
	expect_error("{\"resourceType\":\"Patient\",\"name\":{\"family\":\"x\"}}", "@ Patient.name");
	expect_error("{\"resourceType\":\"Patient\",\"gender\":[\"male\"]}", "@ Patient.gender");
	expect_error("{\"resourceType\":\"Patient\",\"gender\":\"ma  le\"}", "@ Patient.gender");
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"valueMoney\":{\"value\":1}}",
		     "does not allow");
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"valueString\":\"a\",\"valueBoolean\":true}",
		     "both");
	expect_error("{\"resourceType\":\"Observation\",\"code\":{\"text\":\"x\"}}", "@ Observation.status");
	expect_error("{\"resourceType\":\"Patient\",\"multipleBirthInteger\":2147483648}", "@ Patient.multipleBirthInteger");
	expect_error("{\"resourceType\":\"Patient\",\"multipleBirthInteger\":1.5}", "multipleBirthInteger");
	expect_error("{\"resourceType\":\"Patient\",\"extension\":[{\"valueString\":\"x\"}]}",
		     "@ Patient.extension[0].url");
	expect_error("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[null]}]}", "null");
	expect_error("{\"resourceType\":\"Patient\",\"_active\":{\"id\":\"a\",\"foo\":1}}", "@ Patient.active.foo");
	expect_error("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":\"<p>x</p>\"}}",
		     "@ Patient.text.div");
	/* xhtml.extension has max 0: no extension on a narrative div */
	expect_error("{\"resourceType\":\"Patient\",\"text\":{\"status\":\"generated\",\"div\":"
		     "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">x</div>\",\"_div\":{\"extension\":"
		     "[{\"url\":\"urn:x\",\"valueString\":\"y\"}]}}}",
		     "not allowed (maximum 0) @ Patient.text.div.extension");
	expect_error("{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Organization\",\"name\":1}]}",
		     "@ Patient.contained[0].name");
	expect_error("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
		     "{\"resourceType\":\"Patient\",\"deceasedBoolean\":\"no\"}}]}",
		     "@ Bundle.entry[0].resource.deceasedBoolean");
	expect_error("{\"resourceType\":\"Patient\",\"photo\":[{\"data\":\"abc\"}]}", "@ Patient.photo[0].data");
	expect_error("{\"resourceType\":\"Patient\",\"managingOrganization\":{\"reference\":\"x\",\"display\":\"\"}}",
		     "@ Patient.managingOrganization.display");
}

static void valid_resources_pass(void **state)
{
	(void)state;
	char first[512];
	assert_int_equal(check("{\"resourceType\":\"Patient\"}", first, sizeof first), 0);
	assert_int_equal(check("{\"resourceType\":\"Patient\",\"id\":\"a-1.b\",\"birthDate\":\"1990\",\"active\":true,"
			       "\"name\":[{\"given\":[\"A\",null],\"_given\":[null,{\"extension\":[{\"url\":\"u\","
			       "\"valueString\":\"b\"}]}]}],\"multipleBirthInteger\":2}",
			       first, sizeof first),
			 0);
	assert_int_equal(check("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			       "\"effectiveDateTime\":\"2020-02-29T10:00:00+14:00\",\"valueQuantity\":{\"value\":1.10}}",
			       first, sizeof first),
			 0);
	assert_true(validate_primitive_text("instant", "2020-01-01T00:00:00Z"));
	assert_false(validate_primitive_text("instant", "2020-01-01"));
	assert_true(validate_primitive_text("time", "23:59:60"));
	assert_false(validate_primitive_text("time", "24:00:00"));
	assert_true(validate_primitive_text("oid", "urn:oid:2.16.840.1"));
	assert_false(validate_primitive_text("oid", "urn:oid:3.1"));
	assert_true(validate_primitive_text("uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"));
	assert_false(validate_primitive_text("uuid", "urn:uuid:C757873D-EC9A-4326-A141-556F43239520"));
	assert_false(validate_primitive_text("uri", "a b"));
	assert_true(validate_primitive_text("positiveInt", "1"));
	assert_false(validate_primitive_text("positiveInt", "0"));
	assert_true(validate_primitive_text("unsignedInt", "0"));
	assert_false(validate_primitive_text("integer", "-0x1"));
}

/* The line of tests/fixtures/validation-exceptions.txt for file name. */
static bool exception_for(const char *name, char *path, size_t pn, char *says, size_t sn)
{
	FILE *f = fopen("tests/fixtures/validation-exceptions.txt", "r");
	assert_non_null(f);
	char line[1024];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (line[0] == '#' || !t2)
			continue;
		*t1 = *t2 = '\0';
		if (strcmp(line, name) == 0) {
			snprintf(path, pn, "%s", t1 + 1);
			snprintf(says, sn, "%s", t2 + 1);
			found = true;
		}
	}
	fclose(f);
	return found;
}

static int validate_dir(const char *dir, int *invalid)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char p[1024];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		size_t len = 0;
		char *text = slurp(p, &len);
		assert_non_null(text);
		cJSON *j = fjson_parse(text, len, NULL, NULL);
		assert_non_null(j);
		struct outcome oo = OUTCOME_INIT;
		char expect_path[128], expect_says[256];
		bool excepted = exception_for(de->d_name, expect_path, sizeof expect_path, expect_says, sizeof expect_says);
		int errors = validate_resource(j, &oo);
		if (excepted) {
			/* refused, with exactly the listed problem */
			if (errors != 1 || !oo.issues[0].expression || strcmp(oo.issues[0].expression, expect_path) != 0 ||
			    strcmp(oo.issues[0].diagnostics, expect_says) != 0) {
				(*invalid)++;
				print_message("# %s: expected the listed problem, got %d: %s\n", de->d_name, errors,
					      oo.n ? oo.issues[0].diagnostics : "");
			}
		} else if (errors) {
			(*invalid)++;
			print_message("# %s: %s @ %s\n", de->d_name, oo.issues[0].diagnostics,
				      oo.issues[0].expression ? oo.issues[0].expression : "");
		}
		outcome_release(&oo);
		cJSON_Delete(j);
		free(text);
		n++;
	}
	closedir(d);
	return n;
}

/* References name a resource type the element allows (R4 targetProfile). */
static void reference_targets(void **state)
{
	(void)state;
	char first[512];
	expect_error("{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
		     "\"reasonReference\":[{\"reference\":\"Condition/c\"},{\"reference\":\"Goal/g\"}]}",
		     "a reference to a Goal is not allowed here (only Condition, ImmunizationRecommendation, "
		     "Observation, Procedure) @ Encounter.reasonReference[1]");
	/* absolute URLs and versions count; so does "type" alone */
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"subject\":{\"reference\":\"https://ehr.example/fhir/Practitioner/p/_history/2\"}}",
		     "a reference to a Practitioner is not allowed here (only Device, Group, Location, Patient) @ "
		     "Observation.subject");
	expect_error("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"subject\":{\"type\":\"Goal\",\"identifier\":{\"value\":\"1\"}}}",
		     "Observation.subject");
	/* allowed, or not checkable: contained, urn:uuid, logical, unknown types, any-resource elements */
	const char *ok[] = {
		"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		"\"subject\":{\"reference\":\"Patient/p\",\"type\":\"Patient\"},"
		"\"focus\":[{\"reference\":\"Goal/g\"}],\"derivedFrom\":[{\"reference\":\"urn:uuid:1\"}],"
		"\"performer\":[{\"reference\":\"#c1\"},{\"identifier\":{\"value\":\"x\"}},"
		"{\"reference\":\"Golem/g\"}]}",
		"{\"resourceType\":\"Provenance\",\"target\":[{\"reference\":\"Goal/g\"}],"
		"\"recorded\":\"2024-01-01T00:00:00Z\",\"agent\":[{\"who\":{\"reference\":\"Patient/p\"}}]}",
		"{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
		"\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal\","
		"\"valueReference\":{\"reference\":\"Goal/g\"}}]}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (check(ok[i], first, sizeof first) != 0)
			fail_msg("%s: %s", ok[i], first);
	}
}

static void official_examples_are_valid(void **state)
{
	(void)state;
	char dir[512];
	int invalid = 0;
	assert_true(validate_dir(corpus_path(dir, sizeof dir, "fhir-r4/examples-json-xml/json"), &invalid) >= 700);
	assert_int_equal(validate_dir(corpus_path(dir, sizeof dir, "fhir-r4/synthea"), &invalid), 13);
	assert_int_equal(invalid, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(structural_errors_with_locations),
		cmocka_unit_test(valid_resources_pass),
		cmocka_unit_test(reference_targets),
		cmocka_unit_test(official_examples_are_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
