/* libFuzzer harness: FHIR XML readers. Anything accepted must write back as
 * XML, and that XML must read back to the same JSON tree (printed bytes);
 * the streaming reader, where it accepts, must give the same JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = 8u << 20;
	struct outcome oo = OUTCOME_INIT;
	int st = 0;
	cJSON *a = fhir_xml_to_json((const char *)data, size, &lim, &oo, &st);
	/* the streaming reader: whatever it accepts, the tree reader accepts too,
	 * and both give the same JSON (the stream is stricter on element order) */
	struct outcome o2 = OUTCOME_INIT;
	int st2 = 0;
	size_t tl = 0;
	char *text = fhir_xml_to_json_text((const char *)data, size, &lim, &tl, &o2, &st2);
	if (text) {
		cJSON *sj = fjson_parse(text, tl, &lim, NULL);
		size_t l1 = 0, l2 = 0;
		char *p1 = a ? fjson_print(a, false, &l1) : NULL, *p2 = sj ? fjson_print(sj, false, &l2) : NULL;
		if (!a || !sj || !p1 || !p2 || l1 != l2 || memcmp(p1, p2, l1) != 0)
			abort();
		free(p1);
		free(p2);
		cJSON_Delete(sj);
		free(text);
	} else if (st2 != 400 && st2 != 413) {
		abort();
	}
	outcome_release(&o2);
	if (!a) {
		if ((st != 400 && st != 413) || oo.n == 0)
			abort();
		outcome_release(&oo);
		return 0;
	}
	size_t xl = 0;
	char *x = fhir_json_to_xml(a, false, &xl, &oo, &st);
	if (!x)
		abort();
	cJSON *b = fhir_xml_to_json(x, xl, &lim, &oo, &st);
	if (!b)
		abort();
	size_t l1 = 0, l2 = 0;
	char *p1 = fjson_print(a, false, &l1), *p2 = fjson_print(b, false, &l2);
	if (!p1 || !p2 || l1 != l2 || memcmp(p1, p2, l1) != 0)
		abort();
	free(p1);
	free(p2);
	free(x);
	cJSON_Delete(a);
	cJSON_Delete(b);
	outcome_release(&oo);
	return 0;
}
