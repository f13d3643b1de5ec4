/* libFuzzer harness: the conformance-resource loader, snapshot generation and
 * validation against a profile. The input is JSON: one StructureDefinition,
 * ValueSet or CodeSystem, or an array of them and of resources. Every
 * conformance resource is added (or refused with a reason); when the set
 * seals, every profile's snapshot renders and every resource of the input,
 * and a fixed Observation, is validated against each profile and against
 * its own claims; the count returned never exceeds the errors reported. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char obs_text[] =
	"{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"urn:x:p\"]},\"status\":\"final\","
	"\"category\":[{\"coding\":[{\"system\":\"urn:c\",\"code\":\"a\"}]}],\"code\":{\"text\":\"t\"},"
	"\"subject\":{\"reference\":\"Patient/p\"},\"component\":[{\"code\":{\"text\":\"c\"},\"valueString\":\"v\"}],"
	"\"extension\":[{\"url\":\"urn:x:e\",\"valueString\":\"s\"}],\"valueQuantity\":{\"value\":1,\"code\":\"kg\"}}";

static void check(const struct profile_set *ps, const cJSON *res, const char *url)
{
	struct outcome oo = OUTCOME_INIT;
	size_t n = profile_validate(ps, res, url, &oo, NULL);
	if (n > outcome_errors(&oo))
		abort();
	cJSON *o = outcome_to_json(&oo);
	if (!o)
		abort();
	cJSON_Delete(o);
	outcome_release(&oo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.max_depth = 64;
	cJSON *in = fjson_parse((const char *)data, size, &lim, NULL);
	if (!in)
		return 0;
	cJSON *obs = fjson_parse(obs_text, sizeof obs_text - 1, NULL, NULL);
	struct profile_set *ps = profile_set_new(NULL);
	if (!obs || !ps)
		abort();
	char err[512];
	const cJSON *items = cJSON_IsArray(in) ? in->child : in;
	for (const cJSON *it = items; it; it = cJSON_IsArray(in) ? it->next : NULL) {
		err[0] = '\0';
		int r = profile_add(ps, cJSON_Duplicate(it, 1), "fuzz", err, sizeof err);
		if (r < 0 && !err[0])
			abort();
	}
	err[0] = '\0';
	if (profile_seal(ps, err, sizeof err) == 0) {
		const char *url, *type;
		for (size_t i = 0; i < 8 && profile_at(ps, i, &url, &type); i++) {
			cJSON *s = profile_snapshot_json(ps, url);
			if (!s)
				abort();
			cJSON_Delete(s);
			check(ps, obs, url);
			for (const cJSON *it = items; it; it = cJSON_IsArray(in) ? it->next : NULL)
				if (cJSON_IsObject(it))
					check(ps, it, url);
		}
		check(ps, obs, NULL);
		for (const cJSON *it = items; it; it = cJSON_IsArray(in) ? it->next : NULL)
			if (cJSON_IsObject(it))
				check(ps, it, NULL);
	} else if (!err[0]) {
		abort();
	}
	profile_set_free(ps);
	cJSON_Delete(obs);
	cJSON_Delete(in);
	return 0;
}
