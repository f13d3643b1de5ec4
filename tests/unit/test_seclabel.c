/* Unit tests: the security-label rule table (core/fhir/seclabel.h). The
 * shipped table, code by code over the whole ICD-10-CM and HCPCS packs of
 * profiles/codes: every F10-F19 code but F17 labelled, no other ICD-10-CM
 * code; exactly the HCPCS alcohol and/or drug service codes labelled (by
 * their descriptors, checked independently here), H0038 not. Malformed
 * tables refused with their line; labels only added, never twice. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/seclabel.h"

#define TABLE "profiles/security/labels.tsv"
#define ICD "http://hl7.org/fhir/sid/icd-10-cm"
#define HCPCS "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

static struct seclabel_rules *shipped(void)
{
	char err[256] = "";
	struct seclabel_rules *r = seclabel_load(TABLE, err, sizeof err);
	if (!r)
		fprintf(stderr, "# %s\n", err);
	assert_non_null(r);
	return r;
}

static unsigned sud_mask(const struct seclabel_rules *r)
{
	unsigned m = 0;
	const char *sys, *code, *disp;
	for (size_t i = 0; seclabel_label_at(r, i, &sys, &code, &disp); i++)
		if ((!strcmp(sys, SECLABEL_ACTCODE) && !strcmp(code, "ETH")) ||
		    (!strcmp(sys, SECLABEL_CONFIDENTIALITY) && !strcmp(code, "R")))
			m |= 1u << i;
	assert_int_equal(__builtin_popcount(m), 2);
	return m;
}

/* Each line "CODE<TAB>FLAG<TAB>DISPLAY" of a pack, after its # header. */
static void each_code(const char *path, void (*fn)(const char *code, const char *display, void *ud), void *ud)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[16384];
	size_t n = 0;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '#')
			continue;
		line[strcspn(line, "\r\n")] = '\0';
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		assert_non_null(t2);
		*t1 = '\0';
		fn(line, t2 + 1, ud);
		n++;
	}
	fclose(f);
	assert_true(n > 1000);
}

struct count {
	const struct seclabel_rules *r;
	unsigned sud;
	size_t labelled, total;
};

static void icd_one(const char *code, const char *display, void *ud)
{
	(void)display;
	struct count *c = ud;
	/* the reference: F10 to F19, not F17 */
	bool want = code[0] == 'F' && code[1] == '1' && code[2] >= '0' && code[2] <= '9' && code[2] != '7';
	unsigned got = seclabel_code_mask(c->r, ICD, code);
	if ((got == c->sud) != want || (got && got != c->sud))
		fprintf(stderr, "# ICD-10-CM %s: mask %u\n", code, got);
	assert_int_equal(got, want ? c->sud : 0);
	c->labelled += want;
	c->total++;
}

static void every_icd10cm_code(void **state)
{
	(void)state;
	struct seclabel_rules *r = shipped();
	struct count c = {.r = r, .sud = sud_mask(r)};
	each_code("profiles/codes/icd10cm-2026.tsv", icd_one, &c);
	assert_true(c.labelled > 500); /* the F1x chapter is large */
	seclabel_free(r);
}

static void hcpcs_one(const char *code, const char *display, void *ud)
{
	struct count *c = ud;
	/* the reference: an H00xx or T10xx code whose CMS descriptor names
	 * alcohol and/or drug (or substance abuse) services */
	bool family = (!strncmp(code, "H00", 3) || !strncmp(code, "T10", 3)) && strlen(code) == 5;
	bool want = family && (strstr(display, "lcohol and/or") || strstr(display, "lcohol and/or other drug"));
	unsigned got = seclabel_code_mask(c->r, HCPCS, code);
	/* the same through the CARIN spelling of the system */
	unsigned alias = seclabel_code_mask(c->r, "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", code);
	if ((got != 0) != want)
		fprintf(stderr, "# HCPCS %s (%s): mask %u\n", code, display, got);
	assert_int_equal(got, want ? c->sud : 0);
	assert_int_equal(alias, got);
	c->labelled += want;
	c->total++;
}

static void every_hcpcs_code(void **state)
{
	(void)state;
	struct seclabel_rules *r = shipped();
	struct count c = {.r = r, .sud = sud_mask(r)};
	each_code("profiles/codes/hcpcs-2025.tsv", hcpcs_one, &c);
	assert_int_equal(seclabel_code_mask(r, HCPCS, "H0038"), 0); /* peer support */
	assert_true(c.labelled >= 25);
	/* a code of another system with the same text is no match */
	assert_int_equal(seclabel_code_mask(r, "http://example.org/codes", "F11.20"), 0);
	assert_int_equal(seclabel_code_mask(r, ICD, "f11.20"), 0);
	seclabel_free(r);
}

static void part2_and_links(void **state)
{
	(void)state;
	struct seclabel_rules *r = shipped();
	const char *sys, *code, *disp;
	bool part2 = false;
	for (size_t i = 0; seclabel_label_at(r, i, &sys, &code, &disp); i++)
		if (seclabel_part2_mask(r) & (1u << i) && !strcmp(code, SECLABEL_PART2) &&
		    !strcmp(sys, SECLABEL_ACTCODE))
			part2 = true;
	assert_true(part2);
	assert_true(seclabel_inherits(r, "Encounter", "Condition"));
	assert_true(seclabel_inherits(r, "Claim", "Encounter"));
	assert_false(seclabel_inherits(r, "Claim", "Patient"));
	assert_false(seclabel_inherits(r, "Encounter", "Encounter"));
	assert_false(seclabel_inherits(r, "Encounter", "Cond"));
	assert_true(seclabel_passes(r, "Condition", "Encounter"));
	assert_true(seclabel_passes(r, "Condition", ""));
	assert_false(seclabel_passes(r, "Encounter", ""));
	seclabel_free(r);
}

static void labels_are_added_never_removed(void **state)
{
	(void)state;
	struct seclabel_rules *r = shipped();
	cJSON *res =
		cJSON_Parse("{\"resourceType\":\"Condition\",\"meta\":{\"security\":[{\"system\":\"" SECLABEL_ACTCODE
			    "\",\"code\":\"PSY\"}],\"tag\":[{\"system\":\"x\",\"code\":\"F11.20\"}]},"
			    "\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"F17.210\"},"
			    "{\"system\":\"" ICD "\",\"code\":\"F11.20\"}]}}");
	assert_non_null(res);
	assert_int_equal(seclabel_apply(r, res, false), 2);
	assert_int_equal(seclabel_apply(r, res, false), 0); /* once */
	assert_true(seclabel_has(res, SECLABEL_ACTCODE, "PSY"));
	assert_true(seclabel_has(res, SECLABEL_ACTCODE, "ETH"));
	assert_true(seclabel_has(res, SECLABEL_CONFIDENTIALITY, "R"));
	assert_false(seclabel_has(res, SECLABEL_ACTCODE, SECLABEL_PART2));
	assert_int_equal(seclabel_apply(r, res, true), 1); /* a Part 2 program adds its policy */
	assert_true(seclabel_has(res, SECLABEL_ACTCODE, SECLABEL_PART2));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(res, "meta"), "security")), 4);
	/* merge: a union */
	cJSON *other = cJSON_Parse("{\"resourceType\":\"Claim\"}");
	assert_int_equal(seclabel_merge(other, res), 4);
	assert_int_equal(seclabel_merge(other, res), 0);
	/* nothing to add leaves a resource without meta as it was */
	cJSON *plain = cJSON_Parse("{\"resourceType\":\"Patient\"}");
	assert_int_equal(seclabel_apply(r, plain, false), 0);
	assert_null(cJSON_GetObjectItem(plain, "meta"));
	cJSON_Delete(plain);
	cJSON_Delete(other);
	cJSON_Delete(res);
	seclabel_free(r);
}

static void refuses_malformed_tables(void **state)
{
	(void)state;
	static const struct {
		const char *text, *why;
	} bad[] = {
		{"label\tA\ts\tc\td\n", "line 1: the first line"},
		{"#crosswalk-labels\t1\ncode\tsys\tX1\tNOPE\n", "line 2: unknown label name"},
		{"#crosswalk-labels\t1\nlabel\tA\ts\tc\td\nlabel\tA\ts\tc\td\n",
		 "line 3: the label 'A' is defined twice"},
		{"#crosswalk-labels\t1\nlabel\tA\ts\tc\td\ncode\tsys\tB9-A1\tA\n", "line 3: a range"},
		{"#crosswalk-labels\t1\nlabel\tA\ts\tc\td\ncode\tsys\tA1-A100\tA\n", "line 3: a range"},
		{"#crosswalk-labels\t1\nlabel\tA\ts\tc\td\ncode\tsys\tA1\tA,\n", "line 3: unknown label name"},
		{"#crosswalk-labels\t1\nlabel\tA\ts\tc\td\ncode\tsys\tA1\n", "line 3: a code line"},
		{"#crosswalk-labels\t1\nwhat\tx\n", "line 2: unknown line kind"},
		{"#crosswalk-labels\t1\npart2\tZ\n", "line 2: unknown label name"},
		{"#crosswalk-labels\t1\nfrom\tClaim\n", "line 2: a from line"},
		{"#crosswalk-labels\t1\nlabel\tA B\ts\tc\td\n", "line 2: a label line"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char err[256] = "";
		struct seclabel_rules *r = seclabel_parse(bad[i].text, strlen(bad[i].text), "t.tsv", err, sizeof err);
		if (r || !strstr(err, bad[i].why))
			fprintf(stderr, "# case %zu: '%s'\n", i, err);
		assert_null(r);
		assert_non_null(strstr(err, bad[i].why));
		assert_true(!strncmp(err, "t.tsv: ", 7));
	}
	/* a NUL inside is refused, a missing file is an empty table */
	char err[256];
	assert_null(seclabel_parse("#crosswalk-labels\t1\n\0", 21, "t", err, sizeof err));
	struct seclabel_rules *r = seclabel_load("/nonexistent/labels.tsv", err, sizeof err);
	assert_non_null(r);
	assert_int_equal(seclabel_rule_count(r), 0);
	seclabel_free(r);
	/* patterns: exact, prefix, range on the first characters; first match wins */
	const char *t = "#crosswalk-labels\t1\r\nlabel\tA\ts\tc\t\nlabel\tB\ts\td\t\n"
			"code\tsys\tX17*\t-\ncode\tsys\tX10-X19\tA\ncode\tsys\tQ1\tA,B\ncode\tsys\tZ*\tB\n";
	r = seclabel_parse(t, strlen(t), "t", err, sizeof err);
	assert_non_null(r);
	assert_int_equal(seclabel_code_mask(r, "sys", "X10"), 1);
	assert_int_equal(seclabel_code_mask(r, "sys", "X19.99"), 1);
	assert_int_equal(seclabel_code_mask(r, "sys", "X17.1"), 0);
	assert_int_equal(seclabel_code_mask(r, "sys", "X1"), 0);
	assert_int_equal(seclabel_code_mask(r, "sys", "X20"), 0);
	assert_int_equal(seclabel_code_mask(r, "sys", "Q1"), 3);
	assert_int_equal(seclabel_code_mask(r, "sys", "Q10"), 0);
	assert_int_equal(seclabel_code_mask(r, "sys", "Z"), 2);
	assert_int_equal(seclabel_code_mask(r, "other", "Z"), 0);
	seclabel_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_icd10cm_code),       cmocka_unit_test(every_hcpcs_code),
		cmocka_unit_test(part2_and_links),          cmocka_unit_test(labels_are_added_never_removed),
		cmocka_unit_test(refuses_malformed_tables),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
