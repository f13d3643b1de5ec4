/* libFuzzer harness: FHIR XML reader. Anything accepted must write back as
 * XML, and that XML must read back to the same JSON tree (printed bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = 8u << 20;
	struct outcome oo = OUTCOME_INIT;
	int st = 0;
	cJSON *a = fhir_xml_to_json((const char *)data, size, &lim, &oo, &st);
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
