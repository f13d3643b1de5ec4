/* Unit tests: fhir_merge_elements, the element-by-element merge ingest
 * applies to a Patient it writes over a stored one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir_helpers.h"

/* merge(stored into incoming) must give want (all three JSON text). */
static void expect_merge(const char *incoming, const char *stored, const char *want)
{
	cJSON *in = cJSON_Parse(incoming), *st = cJSON_Parse(stored), *w = cJSON_Parse(want);
	assert_non_null(in);
	assert_non_null(st);
	assert_non_null(w);
	assert_int_equal(fhir_merge_elements(in, st), 0);
	if (!cJSON_Compare(in, w, true)) {
		char *t = cJSON_PrintUnformatted(in);
		fail_msg("merged into %s", t);
	}
	cJSON_Delete(in);
	cJSON_Delete(st);
	cJSON_Delete(w);
}

static void absent_elements_are_kept(void **state)
{
	(void)state;
	expect_merge(
		"{\"resourceType\":\"Patient\",\"id\":\"p\",\"identifier\":[{\"system\":\"urn:s\",\"value\":\"1\"}]}",
		"{\"resourceType\":\"Patient\",\"id\":\"p\",\"meta\":{\"versionId\":\"3\",\"lastUpdated\":"
		"\"2024-01-01T00:00:00Z\"},\"text\":{\"status\":\"generated\",\"div\":\"<div>old</div>\"},"
		"\"birthDate\":\"1990-02-03\",\"gender\":\"other\","
		"\"identifier\":[{\"system\":\"urn:s\",\"value\":\"1\"},{\"system\":\"urn:mrn\",\"value\":\"9\"}]}",
		"{\"resourceType\":\"Patient\",\"id\":\"p\",\"identifier\":[{\"system\":\"urn:s\",\"value\":\"1\"},"
		"{\"system\":\"urn:mrn\",\"value\":\"9\"}],\"birthDate\":\"1990-02-03\",\"gender\":\"other\"}");
}

static void present_elements_win(void **state)
{
	(void)state;
	expect_merge(
		"{\"resourceType\":\"Patient\",\"gender\":\"female\","
		"\"extension\":[{\"url\":\"urn:pronouns\",\"valueString\":\"she/her\"}],"
		"\"communication\":[{\"language\":{\"coding\":[{\"system\":\"urn:ietf:bcp:47\",\"code\":\"es\"}]}}]}",
		"{\"resourceType\":\"Patient\",\"gender\":\"other\","
		"\"extension\":[{\"url\":\"urn:pronouns\",\"valueString\":\"they/them\"},"
		"{\"url\":\"urn:identity\",\"valueString\":\"Queer\"}],"
		"\"communication\":[{\"language\":{\"coding\":[{\"system\":\"urn:ietf:bcp:47\",\"code\":\"es\"}]},"
		"\"preferred\":true},{\"language\":{\"coding\":[{\"system\":\"urn:ietf:bcp:47\",\"code\":\"en\"}]}}]}",
		"{\"resourceType\":\"Patient\",\"gender\":\"female\","
		"\"extension\":[{\"url\":\"urn:pronouns\",\"valueString\":\"she/her\"},"
		"{\"url\":\"urn:identity\",\"valueString\":\"Queer\"}],"
		"\"communication\":[{\"language\":{\"coding\":[{\"system\":\"urn:ietf:bcp:47\",\"code\":\"es\"}]}},"
		"{\"language\":{\"coding\":[{\"system\":\"urn:ietf:bcp:47\",\"code\":\"en\"}]}}]}");
}

static void a_name_said_again_keeps_its_parts(void **state)
{
	(void)state;
	/* the same name as text alone: the structured one stays */
	expect_merge("{\"name\":[{\"text\":\"Sam Rivera\"}]}",
		     "{\"name\":[{\"use\":\"official\",\"given\":[\"Sam\"],\"family\":\"Rivera\"}]}",
		     "{\"name\":[{\"use\":\"official\",\"given\":[\"Sam\"],\"family\":\"Rivera\"}]}");
	/* another name: it replaces */
	expect_merge("{\"name\":[{\"text\":\"Sam R.\"}]}", "{\"name\":[{\"given\":[\"Sam\"],\"family\":\"Rivera\"}]}",
		     "{\"name\":[{\"text\":\"Sam R.\"}]}");
	/* a structured name is the writer's own */
	expect_merge("{\"name\":[{\"text\":\"Sam Rivera\",\"use\":\"usual\"}]}",
		     "{\"name\":[{\"text\":\"Sam Rivera\"}]}",
		     "{\"name\":[{\"text\":\"Sam Rivera\",\"use\":\"usual\"}]}");
}

static void meta_lists_are_united(void **state)
{
	(void)state;
	expect_merge(
		"{\"meta\":{\"profile\":[\"urn:a\"]}}",
		"{\"meta\":{\"versionId\":\"2\",\"profile\":[\"urn:b\",\"urn:a\"],\"security\":[{\"system\":\"urn:c\","
		"\"code\":\"R\"}]}}",
		"{\"meta\":{\"profile\":[\"urn:a\",\"urn:b\"],\"security\":[{\"system\":\"urn:c\",\"code\":\"R\"}]}}");
	/* nothing but stamps: no meta */
	expect_merge("{\"gender\":\"male\"}", "{\"meta\":{\"versionId\":\"2\"}}", "{\"gender\":\"male\"}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(absent_elements_are_kept),
		cmocka_unit_test(present_elements_win),
		cmocka_unit_test(a_name_said_again_keeps_its_parts),
		cmocka_unit_test(meta_lists_are_united),
	};
	return cmocka_run_group_tests_name("fhir merge", tests, NULL, NULL);
}
