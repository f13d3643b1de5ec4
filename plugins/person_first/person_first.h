/* person_first — internal interface (the rendering functions are also used
 * by tests/fuzz/fuzz_person_first.c). */
#ifndef PERSON_FIRST_H
#define PERSON_FIRST_H

#include <stdbool.h>
#include <stddef.h>

#define PF_MAX_TEXT 512 /* the longest display rendered, and the longest phrase */

enum pf_mode { PF_CODES = 0, PF_PERSON_FIRST = 1, PF_HIDDEN = 2 };

/* "codes" | "person-first" | "hidden" → the mode, else -1. */
int pf_mode_parse(const char *s);
/* An override key: 1–32 of [A-Za-z0-9.-]. */
bool pf_valid_code(const char *s);
/* An override phrase: 1–200 bytes, no control characters, no surrounding spaces. */
bool pf_valid_phrase(const char *s);
/* ICD-10-CM Z55–Z65 (with or without the dot). */
bool pf_is_circumstance(const char *code);
/* display without qualifiers, tidied and lowercased (acronyms kept); the
 * length, or 0 when nothing is left or it does not fit in cap. */
size_t pf_clean_display(const char *display, char *out, size_t cap);
/* The person-first phrase for one coding (icd10: the code is ICD-10(-CM),
 * so Z55–Z65 are circumstances); its length, or 0 when there is none. */
size_t pf_render(const char *code, const char *display, bool icd10, char *out, size_t cap);

#endif
