/* libFuzzer harness: JSON → XML converter. Any JSON the converter accepts
 * must read back from its XML, and writing that again must give the same XML
 * bytes; the structural validator must not crash on any parsed tree, and
 * whatever it accepts must be writable as XML. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir_xml.h"
#include "fhir/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = 8u << 20;
	cJSON *j = fjson_parse((const char *)data, size, &lim, NULL);
	if (!j)
		return 0;
	struct outcome oo = OUTCOME_INIT;
	size_t errors = validate_resource(j, &oo);
	outcome_release(&oo);
	int st = 0;
	size_t l1 = 0, l2 = 0;
	char *x1 = fhir_json_to_xml(j, false, &l1, &oo, &st);
	if (!x1) {
		/* what the validator accepts (and so the store keeps) is writable as XML */
		if (oo.n == 0 || (st != 400 && st != 500) || (errors == 0 && st == 400))
			abort();
		outcome_release(&oo);
		cJSON_Delete(j);
		return 0;
	}
	cJSON *j2 = fhir_xml_to_json(x1, l1, &lim, &oo, &st);
	if (!j2)
		abort();
	char *x2 = fhir_json_to_xml(j2, false, &l2, &oo, &st);
	if (!x2 || l1 != l2 || memcmp(x1, x2, l1) != 0)
		abort();
	free(x1);
	free(x2);
	cJSON_Delete(j);
	cJSON_Delete(j2);
	outcome_release(&oo);
	return 0;
}
