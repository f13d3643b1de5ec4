/* libFuzzer harness: the queries of core/api/gather.h. The input is JSON: a
 * Parameters resource (as $build and host->store_gather take it), or an
 * object whose string members patient, from and to are the query string of
 * GET /export/{format}. Without a store every query must be refused with one
 * or more issues: 400 when it is malformed, 501 when it is well formed —
 * and never with a Bundle. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "api/gather.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *member(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = 8u << 20;
	struct fjson_error err;
	cJSON *in = fjson_parse((const char *)data, size, &lim, &err);
	if (!in)
		return 0;
	struct app app;
	memset(&app, 0, sizeof app);
	struct outcome oo = OUTCOME_INIT;
	int status = 0;
	cJSON *b;
	const char *rt = member(in, "resourceType");
	if (rt && !strcmp(rt, "Parameters")) {
		b = gather_parameters(&app, in, &oo, &status);
	} else {
		struct gather_query q = {.patient = member(in, "patient"), .from = member(in, "from"),
					 .to = member(in, "to")};
		b = gather_bundle(&app, &q, &oo, &status);
	}
	if (b || (status != 400 && status != 501) || oo.n == 0)
		abort();
	outcome_release(&oo);
	cJSON_Delete(in);
	return 0;
}
