/* libFuzzer harness: the consent decision. The input is a JSON array
 * [resource, recipient, consent, consent, …], the recipient an object
 * {actor, organization, purpose, client, writer, when}. Whatever the
 * Consents hold, the decision is the same twice, unlabelled data is always
 * permitted, a 42CFRPart2 resource reports part2, and a denial by a Consent
 * is never turned into a permit by adding an unrelated, inactive one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/consent.h"
#include "fhir/seclabel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *s(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = 8u << 20;
	struct fjson_error fe;
	cJSON *in = fjson_parse((const char *)data, size, &lim, &fe);
	if (!cJSON_IsArray(in) || cJSON_GetArraySize(in) < 2 || cJSON_GetArraySize(in) > 34) {
		cJSON_Delete(in);
		return 0;
	}
	const cJSON *res = cJSON_GetArrayItem(in, 0), *rq = cJSON_GetArrayItem(in, 1);
	const cJSON *cs[33];
	size_t n = 0;
	for (const cJSON *c = rq->next; c; c = c->next)
		cs[n++] = c;
	struct consent_recipient r = {.actor = s(rq, "actor"),
				      .organization = s(rq, "organization"),
				      .purpose = s(rq, "purpose"),
				      .client = s(rq, "client")};
	struct consent_policy pol = {.part2 = size & 1 ? CONSENT_DEFAULT_PERMIT : CONSENT_DEFAULT_DENY,
				     .restricted = size & 2 ? CONSENT_DEFAULT_PERMIT : CONSENT_DEFAULT_DENY};
	const char *when = s(rq, "when"), *writer = s(rq, "writer");
	struct consent_decision a = consent_decide(&pol, &r, when, res, writer, cs, n);
	struct consent_decision b = consent_decide(&pol, &r, when, res, writer, cs, n);
	if (a.permit != b.permit || a.reason != b.reason || a.part2 != b.part2)
		abort();
	bool part2 = seclabel_has(res, SECLABEL_ACTCODE, SECLABEL_PART2);
	bool restricted =
		seclabel_has(res, SECLABEL_CONFIDENTIALITY, "R") || seclabel_has(res, SECLABEL_CONFIDENTIALITY, "V");
	if (a.part2 != part2 || (!part2 && !restricted && (!a.permit || a.reason != CONSENT_NOT_LABELLED)))
		abort();
	if ((a.reason == CONSENT_DENIED) == a.permit && (a.reason == CONSENT_DENIED || a.reason == CONSENT_PERMITTED))
		abort();
	if (n < 33) {
		cJSON *inactive = cJSON_Parse("{\"resourceType\":\"Consent\",\"status\":\"inactive\",\"provision\":"
					      "{\"type\":\"permit\"}}");
		if (!inactive)
			abort();
		cs[n] = inactive;
		struct consent_decision c = consent_decide(&pol, &r, when, res, writer, cs, n + 1);
		if (c.permit != a.permit || c.reason != a.reason)
			abort();
		cJSON_Delete(inactive);
	}
	cJSON_Delete(in);
	return 0;
}
