/* libFuzzer harness: the narrative rules (txt-1, txt-2). The input is a div
 * as it arrives in JSON. Whatever the check accepts is a well-formed XHTML
 * <div> holding none of the active content the rules refuse; whatever it
 * refuses comes with a reason; and the neutraliser leaves no refused div
 * in a resource. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fhir/fhir_xml.h"
#include "fhir/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	size_t len = strlen(s);
	char why[200] = "";
	bool ok = fhir_xml_check_div(s, len, why, sizeof why);
	if (ok) {
		if (!fhir_xml_valid_div(s, len))
			abort();
		/* never active content in what passes (as written, before entities) */
		static const char *const never[] = {"<script", "<iframe", "<object", "<embed", "<form",
						    "<style",  "<svg",    "<base",   "<link",  "<meta"};
		for (size_t i = 0; i < sizeof never / sizeof *never; i++)
			if (strcasestr(s, never[i]))
				abort();
	} else if (!why[0]) {
		abort();
	}
	cJSON *res = cJSON_CreateObject();
	cJSON *text = cJSON_AddObjectToObject(res, "text");
	if (text && cJSON_AddStringToObject(text, "div", s)) {
		validate_neutralise_narrative(res);
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(text, "div");
		if (!cJSON_IsString(d) || !fhir_xml_check_div(d->valuestring, strlen(d->valuestring), why, sizeof why))
			abort();
	}
	cJSON_Delete(res);
	free(s);
	return 0;
}
