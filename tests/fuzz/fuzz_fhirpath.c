/* libFuzzer harness: the FHIRPath parser and evaluator. Any input either
 * compiles or is refused with an error code and a message; what compiles is
 * evaluated against a small Patient inside a Bundle with a bounded arena, and
 * either yields items that print or fails with an error code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/fhirpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char bundle_text[] =
	"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"urn:uuid:1\",\"resource\":"
	"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,\"gender\":\"female\",\"birthDate\":\"1974-12-"
	"25\","
	"\"_birthDate\":{\"extension\":[{\"url\":\"http://e/x\",\"valueDateTime\":\"1974-12-25T14:35:45-05:00\"}]},"
	"\"name\":[{\"use\":\"official\",\"family\":\"Chalmers\",\"given\":[\"Peter\",\"James\"]}],"
	"\"telecom\":[{\"system\":\"phone\",\"value\":\"(03) 5555 6473\"}],\"multipleBirthInteger\":2,"
	"\"managingOrganization\":{\"reference\":\"urn:uuid:1\"}}},{\"resource\":{\"resourceType\":\"Observation\","
	"\"status\":\"final\",\"code\":{\"text\":\"w\"},\"valueQuantity\":{\"value\":185.10,\"unit\":\"lbs\","
	"\"code\":\"[lb_av]\",\"system\":\"http://unitsofmeasure.org\"}}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cJSON *bundle;
	if (!bundle && !(bundle = fjson_parse(bundle_text, sizeof bundle_text - 1, NULL, NULL)))
		abort();
	struct fp_error err;
	struct fp_expr *e = fp_compile((const char *)data, size, &err);
	if (!e) {
		if (err.code == FP_OK || !err.message[0] || err.offset > size)
			abort();
		return 0;
	}
	const cJSON *patient =
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(bundle, "entry"), 0), "resource");
	const cJSON *targets[2] = {patient, bundle};
	for (int t = 0; t < 2; t++) {
		struct arena a;
		arena_init(&a, 1u << 20);
		struct fp_env env = {.resource = targets[t], .root = bundle};
		struct fp_coll r;
		if (fp_eval(e, &env, &a, &r, &err) == 0) {
			for (size_t i = 0; i < r.n; i++) {
				(void)fp_item_string(&a, &r.v[i]);
				if (!fp_item_type(&r.v[i]))
					abort();
			}
		} else if (err.code == FP_OK || !err.message[0]) {
			abort();
		}
		arena_release(&a);
	}
	fp_free(e);
	return 0;
}
