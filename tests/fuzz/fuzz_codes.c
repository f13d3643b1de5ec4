/* libFuzzer harness: the code-pack reader of the terminology registry.
 *
 * A refusal must say why (a message naming the source) and register
 * nothing. An accepted pack must answer for every code line of the input,
 * the same code back, with as many codes as it has code lines; a code added
 * afterwards (mixed ownership) must be found after sealing; and the same
 * bytes read as a site's CPT file must be accepted exactly when the pack
 * names CPT or no system. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/terminology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks every code line of text against t. Returns the count of them. */
static size_t check_codes(const struct terminology *t, const char *system, const char *text, size_t len)
{
	size_t n = 0;
	bool header = true;
	const char *s = text, *end = text + len;
	for (size_t line = 1; s < end; line++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *stop = nl ? nl : end;
		if (line > 1 && !(header && *s == '#')) {
			header = false;
			const char *tab = memchr(s, '\t', (size_t)(stop - s));
			if (!tab || tab - s > TERMINOLOGY_MAX_CODE)
				abort();
			char code[TERMINOLOGY_MAX_CODE + 1];
			memcpy(code, s, (size_t)(tab - s));
			code[tab - s] = '\0';
			struct terminology_concept c;
			if (terminology_find(t, system, code, &c) != TERMINOLOGY_FOUND || strcmp(c.code, code) != 0 ||
			    !c.display || !c.version)
				abort();
			if (c.billable && !c.billable_known)
				abort();
			n++;
		}
		s = nl ? nl + 1 : end;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct terminology *t = terminology_new();
	if (!t)
		return 0;
	char err[512] = "";
	if (terminology_add_pack(t, text, size, "fuzz.tsv", NULL, err, sizeof err) != 0) {
		if (strncmp(err, "fuzz.tsv: ", 10) != 0 || terminology_systems(t) != 0)
			abort();
	} else {
		struct terminology_system_info si;
		if (terminology_systems(t) != 1 || !terminology_system_at(t, 0, &si) || !si.pack)
			abort();
		const char *url = si.url;
		if (check_codes(t, url, text, size) != si.count)
			abort();
		if (terminology_add_code(t, url, "~fuzz~", "added") != 0)
			abort();
		terminology_seal(t);
		if (!terminology_lookup(t, url, "~fuzz~") || check_codes(t, url, text, size) != si.count)
			abort();
		/* The same bytes as a CPT file. */
		struct terminology *cpt = terminology_new();
		if (!cpt)
			abort();
		int rc = terminology_add_pack(cpt, text, size, "cpt.tsv", TERMINOLOGY_CPT, err, sizeof err);
		bool names_other = strcmp(url, TERMINOLOGY_CPT) != 0; /* an accepted pack names its system */
		if ((rc == 0) == names_other)
			abort();
		terminology_free(cpt);
	}
	terminology_free(t);
	return 0;
}
