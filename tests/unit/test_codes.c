/* Unit tests: the code packs of profiles/codes (ICD-10-CM, HCPCS) in the
 * terminology registry — lookups, billable flags, HCPCS URI aliases, counts
 * against the source lists, a site's CPT file, and the pack reader's
 * refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/terminology.h"
#include "testenv.h"

static const char *const hcpcs_uris[] = {
	"http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
	"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
	"http://terminology.hl7.org/CodeSystem/HCPCS-all-codes",
};

static int load_shipped(void **state)
{
	struct terminology *t = terminology_new();
	char err[512] = "";
	if (!t)
		return -1;
	int n = terminology_load_packs(t, "profiles/codes", err, sizeof err);
	if (n != 2) {
		print_message("# load_packs: %d: %s\n", n, err);
		terminology_free(t);
		return -1;
	}
	terminology_seal(t);
	*state = t;
	return 0;
}

static int free_shipped(void **state)
{
	terminology_free(*state);
	return 0;
}

static void billable_code(void **state)
{
	const struct terminology *t = *state;
	struct terminology_concept c;
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, "F32.A", &c), TERMINOLOGY_FOUND);
	assert_string_equal(c.display, "Depression, unspecified");
	assert_string_equal(c.system, TERMINOLOGY_ICD10CM);
	assert_string_equal(c.version, "2026");
	assert_true(c.billable_known);
	assert_true(c.billable);
	assert_false(c.inactive);
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, "Z59.01", &c), TERMINOLOGY_FOUND);
	assert_string_equal(c.display, "Sheltered homelessness");
	assert_true(c.billable);
	assert_string_equal(terminology_lookup(t, TERMINOLOGY_ICD10CM, "F33.1"),
			    "Major depressive disorder, recurrent, moderate");
}

static void header_code_is_not_billable(void **state)
{
	const struct terminology *t = *state;
	struct terminology_concept c;
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, "Z59.0", &c), TERMINOLOGY_FOUND);
	assert_string_equal(c.display, "Homelessness");
	assert_true(c.billable_known);
	assert_false(c.billable);
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, "F01", &c), TERMINOLOGY_FOUND);
	assert_false(c.billable);
	assert_string_equal(c.display, "Vascular dementia");
}

static void unknown_code_and_system(void **state)
{
	const struct terminology *t = *state;
	struct terminology_concept c;
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, "Z59.999", &c), TERMINOLOGY_NO_CODE);
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, "z59.0", NULL), TERMINOLOGY_NO_CODE);
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, "Z590", NULL), TERMINOLOGY_NO_CODE);
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, "", NULL), TERMINOLOGY_NO_CODE);
	assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, NULL, NULL), TERMINOLOGY_NO_CODE);
	assert_int_equal(terminology_find(t, "http://snomed.info/sct", "F32.A", NULL), TERMINOLOGY_NO_SYSTEM);
	assert_int_equal(terminology_find(t, NULL, "F32.A", NULL), TERMINOLOGY_NO_SYSTEM);
	assert_null(terminology_lookup(t, TERMINOLOGY_ICD10CM, "Q99.99"));
	assert_false(terminology_system_known(t, TERMINOLOGY_CPT)); /* never shipped */
}

static void hcpcs_under_every_uri(void **state)
{
	const struct terminology *t = *state;
	for (size_t i = 0; i < sizeof hcpcs_uris / sizeof hcpcs_uris[0]; i++) {
		struct terminology_concept c;
		assert_int_equal(terminology_find(t, hcpcs_uris[i], "H0038", &c), TERMINOLOGY_FOUND);
		assert_string_equal(c.system, TERMINOLOGY_HCPCS);
		assert_string_equal(c.display, "Self-help/peer services, per 15 minutes");
		assert_string_equal(c.version, "2025");
		assert_false(c.billable_known);
		assert_false(c.inactive);
		assert_false(c.modifier);
		assert_true(terminology_system_known(t, hcpcs_uris[i]));
		assert_string_equal(terminology_normalise_system(hcpcs_uris[i]), TERMINOLOGY_HCPCS);
	}
	struct terminology_concept c;
	assert_int_equal(terminology_find(t, TERMINOLOGY_HCPCS, "HQ", &c), TERMINOLOGY_FOUND);
	assert_true(c.modifier);
	assert_int_equal(terminology_find(t, TERMINOLOGY_HCPCS, "CP", &c), TERMINOLOGY_FOUND);
	assert_true(c.modifier);
	assert_true(c.inactive); /* terminated 2017-12-31 */
	assert_int_equal(terminology_find(t, TERMINOLOGY_HCPCS, "G0146", &c), TERMINOLOGY_FOUND);
	assert_string_equal(c.display, "Principal illness navigation - peer support, additional 30 minutes per "
				       "calendar month (list separately in addition to g0140)");
	assert_string_equal(terminology_normalise_system("urn:other"), "urn:other");
	assert_null(terminology_normalise_system(NULL));
}

/* Data rows of a source TSV (lines minus the header), or -1 when absent. */
static long source_rows(const char *name)
{
	char rel[256], path[1024];
	snprintf(rel, sizeof rel, "codes/%s", name);
	FILE *f = fopen(corpus_path(path, sizeof path, rel), "rb");
	if (!f) {
		print_message("# %s: not found (the corpus is unpacked by make tests-build)\n", path);
		return -1;
	}
	long lines = 0;
	int ch, last = '\n';
	while ((ch = fgetc(f)) != EOF) {
		lines += ch == '\n';
		last = ch;
	}
	fclose(f);
	return lines + (last != '\n') - 1;
}

static void counts_match_the_sources(void **state)
{
	const struct terminology *t = *state;
	long icd = source_rows("icd10cm-2026.tsv"), hcpcs = source_rows("hcpcs-2025.tsv");
	assert_true(icd >= 0 && hcpcs >= 0);
	struct terminology_system_info si;
	assert_true(terminology_system_info(t, TERMINOLOGY_ICD10CM, &si));
	assert_int_equal(si.count, icd);
	assert_int_equal(si.count, 98186); /* SOURCES.md */
	assert_true(si.pack);
	assert_true(si.billable_known);
	assert_string_equal(si.name, "ICD-10-CM");
	assert_true(terminology_system_info(t, hcpcs_uris[2], &si));
	assert_int_equal(si.count, hcpcs);
	assert_int_equal(si.count, 8846);
	assert_string_equal(si.url, TERMINOLOGY_HCPCS);
	/* Billable per the source's flag: 74,719 of 98,186. */
	size_t billable = 0;
	FILE *f = fopen("profiles/codes/icd10cm-2026.tsv", "rb");
	assert_non_null(f);
	char line[8192];
	while (fgets(line, sizeof line, f)) {
		char *tab = strchr(line, '\t');
		if (line[0] == '#' || !tab)
			continue;
		*tab = '\0';
		struct terminology_concept c;
		assert_int_equal(terminology_find(t, TERMINOLOGY_ICD10CM, line, &c), TERMINOLOGY_FOUND);
		billable += c.billable;
	}
	fclose(f);
	assert_int_equal(billable, 74719);
	assert_int_equal(terminology_systems(t), 2);
	assert_false(terminology_system_at(t, 2, &si));
}

/* ------------------------------------------------------------ the reader */

#define HEAD "#crosswalk-codes\t1\n"

static int add(struct terminology *t, const char *text, const char *want, char *err, size_t errlen)
{
	return terminology_add_pack(t, text, strlen(text), "test.tsv", want, err, errlen);
}

static void site_cpt_file(void **state)
{
	(void)state;
	struct terminology *t = terminology_new();
	char err[512] = "";
	/* No #system: taken as the system asked for. CRLF is accepted. */
	assert_int_equal(add(t, HEAD "#version\t2025\r\n90832\t-\tPsychotherapy, 30 min\r\n90834\t-\tPsychotherapy, 45 "
				    "min\r\n",
			     TERMINOLOGY_CPT, err, sizeof err),
			 0);
	terminology_seal(t);
	struct terminology_concept c;
	assert_int_equal(terminology_find(t, TERMINOLOGY_CPT, "90834", &c), TERMINOLOGY_FOUND);
	assert_string_equal(c.display, "Psychotherapy, 45 min");
	assert_string_equal(c.version, "2025");
	struct terminology_system_info si;
	assert_true(terminology_system_info(t, TERMINOLOGY_CPT, &si));
	assert_string_equal(si.name, TERMINOLOGY_CPT);
	assert_string_equal(si.source, "test.tsv");
	/* The same system twice is refused. */
	assert_int_equal(add(t, HEAD "90791\t-\tx\n", TERMINOLOGY_CPT, err, sizeof err), -1);
	assert_non_null(strstr(err, "already loaded from test.tsv"));
	/* A file of another system where CPT is expected is refused. */
	assert_int_equal(add(t, HEAD "#system\thttp://hl7.org/fhir/sid/icd-10-cm\nA00\t-\tx\n", TERMINOLOGY_CPT, err,
			     sizeof err),
			 -1);
	assert_non_null(strstr(err, "must be of http://www.ama-assn.org/go/cpt"));
	assert_false(terminology_system_known(t, TERMINOLOGY_ICD10CM));
	terminology_free(t);
}

static void codes_added_to_a_pack_system(void **state)
{
	(void)state;
	struct terminology *t = terminology_new();
	char err[512] = "";
	assert_int_equal(add(t, HEAD "#system\thttps://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets\n"
				    "H0038\t-\tPeer\nT1016\tI\tCase management\n",
			     NULL, err, sizeof err),
			 0);
	/* Mixed ownership: a code copied in after the pack's own. */
	assert_int_equal(terminology_add_code(t, TERMINOLOGY_HCPCS, "G0140", "Navigation"), 0);
	terminology_seal(t);
	assert_string_equal(terminology_lookup(t, TERMINOLOGY_HCPCS, "G0140"), "Navigation");
	assert_string_equal(terminology_lookup(t, hcpcs_uris[1], "H0038"), "Peer");
	struct terminology_concept c;
	assert_int_equal(terminology_find(t, TERMINOLOGY_HCPCS, "T1016", &c), TERMINOLOGY_FOUND);
	assert_true(c.inactive);
	/* A CodeSystem resource of a pack's system is refused. */
	cJSON *cs = cJSON_Parse("{\"resourceType\":\"CodeSystem\",\"url\":\"http://terminology.hl7.org/CodeSystem/"
				"HCPCS-all-codes\",\"concept\":[{\"code\":\"X\"}]}");
	assert_int_equal(terminology_add(t, cs, err, sizeof err), -1);
	assert_non_null(strstr(err, "already loaded from the code pack"));
	cJSON_Delete(cs);
	/* …and a pack of a system a CodeSystem resource registered. */
	cs = cJSON_Parse("{\"resourceType\":\"CodeSystem\",\"url\":\"urn:test:dims\",\"title\":\"Dims\","
			 "\"version\":\"3\",\"concept\":[{\"code\":\"a\"}]}");
	assert_int_equal(terminology_add(t, cs, err, sizeof err), 0);
	cJSON_Delete(cs);
	assert_int_equal(add(t, HEAD "#system\turn:test:dims\na\t-\tA\n", NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "already loaded from a CodeSystem resource"));
	struct terminology_system_info si;
	assert_true(terminology_system_info(t, "urn:test:dims", &si));
	assert_string_equal(si.name, "Dims");
	assert_string_equal(si.version, "3");
	assert_false(si.pack);
	terminology_free(t);
}

static void reader_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *text, *expect;
	} cases[] = {
		{"", "empty file"},
		{"code\tflags\tdisplay\n", "line 1: not a code pack"},
		{"#crosswalk-codes\t2\n", "line 1: not a code pack"},
		{HEAD "#system\turn:a\n", "no codes"},
		{HEAD "A\t-\tx\n", "no #system line"},
		{HEAD "#system\turn:a\nB\t-\tx\nA\t-\ty\n", "line 4: B A: codes must be unique and sorted"},
		{HEAD "#system\turn:a\nA\t-\tx\nA\t-\ty\n", "line 4: A A: codes must be unique"},
		{HEAD "#system\turn:a\nA\tB\tx\n", "line 3: flag 'B' is not one of"},
		{HEAD "#system\turn:a\n#billable\tyes\nA\tX\tx\n", "line 4: flag 'X'"},
		{HEAD "#system\turn:a\nA\t\tx\n", "line 3: empty flags"},
		{HEAD "#system\turn:a\n#billable\tmaybe\n", "line 3: #billable must be yes or no"},
		{HEAD "#system\turn:a\n#colour\tred\nA\t-\tx\n", "line 3: unknown header #colour"},
		{HEAD "#system\turn:a\n#system\turn:b\n", "line 3: #system given twice"},
		{HEAD "#system\tnot a uri\n", "line 2: #system must be an absolute URI"},
		{HEAD "#system\n", "line 2: a header line is"},
		{HEAD "#system\t\n", "line 2: #system: the value must be"},
		{HEAD "#system\turn:a\nA\t-\n", "line 3: a code line is"},
		{HEAD "#system\turn:a\nA\t-\tx\ty\n", "line 3: a code line is"},
		{HEAD "#system\turn:a\nA B\t-\tx\n", "line 3: the code must be"},
		{HEAD "#system\turn:a\n\t-\tx\n", "line 3: the code must be"},
		{HEAD "#system\turn:a\nA\t-\tx\n#B\t-\ty\n", "line 4: the code must be"},
		{HEAD "#system\turn:a\nA\t-\tx\x01y\n", "line 3: the display is not UTF-8 text"},
		{HEAD "#system\turn:a\nA\t-\tx\xc3(\n", "line 3: the display is not UTF-8 text"},
		{HEAD "#system\turn:a\nA\t-\t\xed\xa0\x80\n", "line 3: the display is not UTF-8 text"},
		{HEAD "#system\turn:a\nA\t-\t\xc0\xaf\n", "line 3: the display is not UTF-8 text"},
		{HEAD "#system\turn:a\nA\t-\tx\n\nB\t-\ty\n", "line 4: empty line"},
		{HEAD "#system\turn:a\n#count\t3\nA\t-\tx\nB\t-\ty\n", "#count says 3, the pack has 2 codes"},
		{HEAD "#system\turn:a\n#count\t-2\nA\t-\tx\n", "#count says -2"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct terminology *t = terminology_new();
		char err[512] = "";
		assert_int_equal(add(t, cases[i].text, NULL, err, sizeof err), -1);
		if (!strstr(err, cases[i].expect) || strncmp(err, "test.tsv: ", 10) != 0)
			fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].expect);
		assert_int_equal(terminology_systems(t), 0); /* nothing registered */
		terminology_free(t);
	}
	/* A NUL byte inside the data. */
	struct terminology *t = terminology_new();
	char err[512] = "";
	static const char nul[] = HEAD "#system\turn:a\nA\t-\tx\0y\n";
	assert_int_equal(terminology_add_pack(t, nul, sizeof nul - 1, "test.tsv", NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "NUL byte"));
	/* Accepted: no final newline, UTF-8 text, empty display, flags combined. */
	assert_int_equal(add(t, HEAD "#system\turn:a\n#billable\tyes\n#count\t3\nA\tB\tCaf\xc3\xa9\nB\t-\t\nC\tBIM\tz",
			     NULL, err, sizeof err),
			 0);
	terminology_seal(t);
	struct terminology_concept c;
	assert_int_equal(terminology_find(t, "urn:a", "C", &c), TERMINOLOGY_FOUND);
	assert_true(c.billable && c.inactive && c.modifier);
	assert_string_equal(c.display, "z");
	assert_string_equal(terminology_lookup(t, "urn:a", "B"), "");
	assert_string_equal(terminology_lookup(t, "urn:a", "A"), "Caf\xc3\xa9");
	terminology_free(t);
}

static void missing_files(void **state)
{
	(void)state;
	struct terminology *t = terminology_new();
	char err[512] = "";
	assert_int_equal(terminology_load_packs(t, "/tmp/cw-no-such-codes", err, sizeof err), 0);
	assert_int_equal(terminology_load_pack(t, "/tmp/cw-no-such-cpt.tsv", TERMINOLOGY_CPT, err, sizeof err), -1);
	assert_non_null(strstr(err, "/tmp/cw-no-such-cpt.tsv: cannot read"));
	terminology_free(t);
}

int main(void)
{
	const struct CMUnitTest shipped[] = {
		cmocka_unit_test(billable_code),
		cmocka_unit_test(header_code_is_not_billable),
		cmocka_unit_test(unknown_code_and_system),
		cmocka_unit_test(hcpcs_under_every_uri),
		cmocka_unit_test(counts_match_the_sources),
	};
	const struct CMUnitTest reader[] = {
		cmocka_unit_test(site_cpt_file),
		cmocka_unit_test(codes_added_to_a_pack_system),
		cmocka_unit_test(reader_refusals),
		cmocka_unit_test(missing_files),
	};
	int failed = cmocka_run_group_tests_name("shipped packs", shipped, load_shipped, free_shipped);
	failed += cmocka_run_group_tests_name("pack reader", reader, NULL, NULL);
	return failed;
}
