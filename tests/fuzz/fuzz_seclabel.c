/* libFuzzer harness: the security-label rule table and its use. The input is
 * a table, then optionally a NUL byte and a JSON resource. A table either
 * parses or is refused with "SOURCE: line N: reason"; a parsed one labels the
 * resource so that every label it had stays, none appears twice, a second
 * pass adds nothing, and the result prints and parses again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/seclabel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_labels(const cJSON *res)
{
	return (size_t)cJSON_GetArraySize(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "security"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	size_t tlen = nul ? (size_t)(nul - text) : size;
	char err[256] = "";
	struct seclabel_rules *r = seclabel_parse(text, tlen, "fuzz", err, sizeof err);
	if (!r) {
		if (strncmp(err, "fuzz: ", 6) != 0)
			abort();
		return 0;
	}
	if (!nul) {
		seclabel_free(r);
		return 0;
	}
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = 8u << 20;
	struct fjson_error fe;
	cJSON *res = fjson_parse(nul + 1, size - tlen - 1, &lim, &fe);
	if (!cJSON_IsObject(res)) {
		cJSON_Delete(res);
		seclabel_free(r);
		return 0;
	}
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
	cJSON *sec = cJSON_GetObjectItemCaseSensitive(meta, "security");
	if ((meta && !cJSON_IsObject(meta)) || (sec && !cJSON_IsArray(sec))) {
		/* not a resource's meta: refused, nothing changed */
		char *before = fjson_print(res, false, NULL);
		if (seclabel_apply(r, res, true) > 0)
			abort();
		char *after = fjson_print(res, false, NULL);
		if (!before || !after || strcmp(before, after) != 0)
			abort();
		free(before);
		free(after);
		cJSON_Delete(res);
		seclabel_free(r);
		return 0;
	}
	cJSON *orig = cJSON_Duplicate(res, true);
	size_t had = count_labels(res);
	int added = seclabel_apply(r, res, size & 1);
	if (added < 0 || count_labels(res) != had + (size_t)added)
		abort();
	if (seclabel_apply(r, res, size & 1) != 0)
		abort();
	/* every label it had is still there */
	const cJSON *c;
	cJSON_ArrayForEach(c,
			   cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(orig, "meta"), "security"))
	{
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "system");
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "code");
		if (cJSON_IsString(s) && cJSON_IsString(k) && !seclabel_has(res, s->valuestring, k->valuestring))
			abort();
	}
	/* merging into a copy of the original gives as many as were added, at most */
	if (seclabel_merge(orig, res) > added)
		abort();
	char *out = fjson_print(res, false, NULL);
	if (!out)
		abort();
	cJSON *again = fjson_parse(out, strlen(out), NULL, &fe);
	if (!again)
		abort();
	cJSON_Delete(again);
	free(out);
	cJSON_Delete(orig);
	cJSON_Delete(res);
	seclabel_free(r);
	return 0;
}
