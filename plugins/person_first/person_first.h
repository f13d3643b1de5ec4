/* person_first — internal interface (the rendering functions are also used
 * by tests/fuzz/fuzz_person_first.c and tests/unit/test_person_first.c). */
#ifndef PERSON_FIRST_H
#define PERSON_FIRST_H

#include <stdbool.h>
#include <stddef.h>

#define PF_MAX_TEXT 512 /* the longest display rendered, and the longest phrase */

/* The phrase table of profiles/ (CodeSystem person-first-phrases). */
#define PF_BASE "https://crosswalk.example.org/fhir"
#define PF_PHRASES PF_BASE "/CodeSystem/person-first-phrases"
/* The person's own preference, a Patient extension the recovery plan writes. */
#define PF_PREFERENCE PF_BASE "/StructureDefinition/diagnosis-language"

enum pf_mode { PF_CODES = 0, PF_PERSON_FIRST = 1, PF_HIDDEN = 2 };

/* How a phrase names the person: "Person living with X" (person-first), or
 * the condition alone, "X" (identity-first: the person's own words name
 * them, the gateway does not). */
enum pf_style { PF_STYLE_PERSON_FIRST = 0, PF_STYLE_IDENTITY_FIRST = 1 };

/* The phrase table: row(ud, code) is the phrase of an ICD-10-CM code or
 * category (dotted, upper case), or NULL; row may be NULL (no table). */
struct pf_table {
	const char *(*row)(void *ud, const char *code);
	void *ud;
};

/* "codes" | "person-first" | "hidden" → the mode, else -1. */
int pf_mode_parse(const char *s);
/* An override key: 1–32 of [A-Za-z0-9.-]. */
bool pf_valid_code(const char *s);
/* An override phrase: 1–200 bytes, no control characters, no surrounding spaces. */
bool pf_valid_phrase(const char *s);
/* ICD-10-CM Z55–Z65 (with or without the dot). */
bool pf_is_circumstance(const char *code);
/* text holds, as a whole word in any case, one the language guidance rules
 * out: abuse, abuser(s), abusing, addict(s), noncompliance, noncompliant
 * (with or without the hyphen), alcoholic, alcoholism. */
bool pf_forbidden(const char *text);
/* display without qualifiers (and without a remission clause), tidied and
 * lowercased (acronyms kept); the length, or 0 when nothing is left or it
 * does not fit in cap. */
size_t pf_clean_display(const char *display, char *out, size_t cap);
/* The phrase for one coding (icd10: the code is ICD-10(-CM): R codes and
 * Z-codes outside Z55–Z65 get none, Z55–Z65 are circumstances, and the
 * table's rows apply); its length, or 0 when there is none — also when the
 * phrase would hold a word pf_forbidden rules out. */
size_t pf_render(const char *code, const char *display, bool icd10, enum pf_style style, const struct pf_table *table,
		 char *out, size_t cap);

#endif
