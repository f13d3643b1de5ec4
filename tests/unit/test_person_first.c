/* Unit tests: the person-first phrases (plugins/person_first) over every F
 * and Z code of the ICD-10-CM pack, with the table of profiles/ (CodeSystem
 * person-first-phrases) loaded as the gateway loads it:
 *   - no phrase holds "abuse", "addict" or "noncompliance" (checked here by
 *     substring, apart from the plugin's own guard);
 *   - every F code and every circumstance (Z55–Z65) has a phrase, so the
 *     guard cannot pass by dropping them;
 *   - F1x.1x is a mild and F1x.2x a moderate or severe use disorder;
 *     remission codes read "Person in recovery from …";
 *   - R codes and Z-codes outside Z55–Z65 get no phrase. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/terminology.h"

#include "../../plugins/person_first/person_first.c"

static struct terminology *terms;

static const char *row(void *ud, const char *code) { return terminology_lookup(ud, PF_PHRASES, code); }

static int load(void **state)
{
	(void)state;
	char err[512];
	terms = terminology_new();
	assert_non_null(terms);
	if (terminology_load_dir(terms, "profiles", err, sizeof err) < 0 ||
	    terminology_load_packs(terms, "profiles/codes", err, sizeof err) < 0)
		fail_msg("%s", err);
	terminology_seal(terms);
	assert_true(terminology_system_known(terms, PF_PHRASES));
	return 0;
}

static int unload(void **state)
{
	(void)state;
	terminology_free(terms);
	return 0;
}

/* A word the guidance rules out, as a substring in any case. */
static bool says_forbidden(const char *s)
{
	static const char *const words[] = {"abuse", "addict", "noncomplian", "non-complian"};
	char low[PF_MAX_TEXT];
	size_t i = 0;
	for (; s[i] && i + 1 < sizeof low; i++)
		low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	low[i] = '\0';
	for (size_t k = 0; k < sizeof words / sizeof *words; k++)
		if (strstr(low, words[k]))
			return true;
	return false;
}

static bool substance(const char *code) /* F10–F19 */
{
	return code[0] == 'F' && code[1] == '1' && code[2] >= '0' && code[2] <= '9';
}

static void every_f_and_z_code(void **state)
{
	(void)state;
	FILE *f = fopen("profiles/codes/icd10cm-2026.tsv", "rb");
	assert_non_null(f);
	const struct pf_table table = {row, terms};
	char line[1024];
	size_t fs = 0, zs = 0, rs = 0, bad = 0, remissions = 0;
	while (fgets(line, sizeof line, f)) {
		if (line[0] != 'F' && line[0] != 'Z' && line[0] != 'R')
			continue;
		line[strcspn(line, "\r\n")] = '\0';
		char *code = line, *tab = strchr(line, '\t');
		assert_non_null(tab);
		*tab = '\0';
		const char *display = strchr(tab + 1, '\t');
		assert_non_null(display);
		display++;
		for (int style = 0; style < 2; style++) {
			char out[PF_MAX_TEXT];
			size_t n = pf_render(code, display, true, (enum pf_style)style, &table, out, sizeof out);
			const char *why = NULL;
			if (code[0] == 'R' || (code[0] == 'Z' && !pf_is_circumstance(code))) {
				if (n)
					why = "has a phrase, but R codes and Z-codes outside Z55-Z65 get none";
			} else if (!n) {
				why = "has no phrase";
			} else if (says_forbidden(out)) {
				why = "says a word the guidance rules out";
			} else if (style == PF_STYLE_PERSON_FIRST) {
				bool remission = strstr(display, "remission") != NULL;
				if (remission && strncmp(out, "Person in recovery from ", 24) != 0)
					why = "is a remission code not read as recovery";
				else if (!remission && code[0] == 'F' && strncmp(out, "Person living with ", 19) != 0)
					why = "does not begin with \"Person living with\"";
				else if (code[0] == 'Z' && strncmp(out, "Person experiencing ", 20) != 0)
					why = "is a circumstance not begun with \"Person experiencing\"";
				else if (substance(code) && code[4] == '1' && !strstr(out, "use disorder, mild"))
					why = "is F1x.1 but no mild use disorder";
				else if (substance(code) && code[4] == '2' &&
					 !strstr(out, "use disorder, moderate or severe"))
					why = "is F1x.2 but no moderate or severe use disorder";
				remissions += remission && !why;
			}
			if (why) {
				bad++;
				print_message("# %s \"%s\" -> \"%s\" %s\n", code, display, n ? out : "", why);
			}
		}
		fs += code[0] == 'F';
		zs += code[0] == 'Z';
		rs += code[0] == 'R';
	}
	fclose(f);
	/* the pack as test_codes counts it: every F, Z and R code seen */
	assert_true(fs > 800 && zs > 1000 && rs > 500);
	assert_true(remissions >= 40);
	assert_int_equal(bad, 0);
}

/* A few phrases written out, as docs/person-first.md shows them. */
static void phrases_as_documented(void **state)
{
	(void)state;
	const struct pf_table table = {row, terms};
	static const struct {
		const char *code, *want;
	} cases[] = {
		{"F10.10", "Person living with alcohol use disorder, mild"},
		{"F10.11", "Person in recovery from alcohol use disorder, mild"},
		{"F10.20", "Person living with alcohol use disorder, moderate or severe"},
		{"F10.121", "Person living with alcohol use disorder, mild, with intoxication delirium"},
		{"F11.21", "Person in recovery from opioid use disorder, moderate or severe"},
		{"F55.2", "Person living with harmful use of laxatives"},
		{"F20.9", "Person living with schizophrenia"},
		{"F33.42", "Person in recovery from major depressive disorder, recurrent"},
		{"Z59.811", "Person experiencing housing instability"},
		{"Z62.810", "Person experiencing a history of physical and sexual maltreatment in childhood"},
		{"Z56.0", "Person experiencing unemployment"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char out[PF_MAX_TEXT];
		const char *display = terminology_lookup(terms, PF_ICD10CM, cases[i].code);
		assert_non_null(display);
		assert_true(pf_render(cases[i].code, display, true, PF_STYLE_PERSON_FIRST, &table, out, sizeof out) >
			    0);
		assert_string_equal(out, cases[i].want);
	}
	char out[PF_MAX_TEXT];
	assert_true(pf_render("F10.20", "Alcohol dependence, uncomplicated", true, PF_STYLE_IDENTITY_FIRST, &table, out,
			      sizeof out) > 0);
	assert_string_equal(out, "Alcohol use disorder, moderate or severe");
	/* without the table, an ICD "abuse" display gets no phrase rather than a label */
	assert_int_equal(
		pf_render("F10.10", "Alcohol abuse, uncomplicated", true, PF_STYLE_PERSON_FIRST, NULL, out, sizeof out),
		0);
	assert_int_equal(pf_render("Z91.19", "Patient's noncompliance with other medical treatment and regimen", true,
				   PF_STYLE_PERSON_FIRST, &table, out, sizeof out),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_f_and_z_code),
		cmocka_unit_test(phrases_as_documented),
	};
	return cmocka_run_group_tests_name("person-first phrases", tests, load, unload);
}
